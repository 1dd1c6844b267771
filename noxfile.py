#!/usr/bin/env -S uv run --script
# /// script
# dependencies = ["nox>=2025.2.9"]
# ///
"""Every workflow of the monorepo, as nox sessions (`nox -l` lists them)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
PACKAGES = {
    "iris-model": ROOT / "packages" / "iris-model",
    "inference-server": ROOT / "packages" / "inference-server",
}
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def install(
    session: nox.Session, *groups: str, packages: tuple[str, ...] = tuple(PACKAGES)
) -> None:
    """Install workspace packages (editable) and dependency groups from the root pyproject."""
    requirements: list[str] = []
    for group in groups:
        requirements += nox.project.dependency_groups(PYPROJECT, group)
    editables = [arg for name in packages for arg in ("-e", str(PACKAGES[name]))]
    session.install(*editables, *requirements)


@nox.session
def lint(session: nox.Session) -> None:
    """Lint and type-check: ruff check, ruff format --check, mypy --strict."""
    install(session, "lint", "test")
    session.run("ruff", "check", ".", *session.posargs)
    session.run("ruff", "format", "--check", ".")
    sources = [str(path / "src") for path in PACKAGES.values() if (path / "src").is_dir()]
    session.run("mypy", *sources)


@nox.session
@nox.parametrize("package", list(PACKAGES), ids=list(PACKAGES))
def tests(session: nox.Session, package: str) -> None:
    """Unit tests of one package, with branch coverage."""
    install(session, "test", *PACKAGE_TEST_GROUPS.get(package, ()))
    import_name = package.replace("-", "_")
    coverage_floor = {"iris-model": "90"}.get(package, "85")
    session.run(
        "pytest",
        str(PACKAGES[package] / "tests"),
        f"--cov={import_name}",
        f"--cov-fail-under={coverage_floor}",
        "--cov-report=term-missing:skip-covered",
        *session.posargs,
        env={"COVERAGE_FILE": str(ROOT / f".coverage.{package}")},
    )


# Extra dependency groups a package's unit tests need beyond "test".
PACKAGE_TEST_GROUPS: dict[str, tuple[str, ...]] = {"iris-model": ("plot",)}


@nox.session(default=False)
def build(session: nox.Session) -> None:
    """Build the wheels and sdists of every package into dist/."""
    session.install("build")
    for path in PACKAGES.values():
        session.run("python", "-m", "build", "--outdir", str(ROOT / "dist"), str(path))


if __name__ == "__main__":
    nox.main()
