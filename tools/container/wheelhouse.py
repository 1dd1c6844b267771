"""Prepare the inputs of an image build: the locked requirements and, offline, a wheelhouse.

    python tools/container/wheelhouse.py requirements [--check]
    python tools/container/wheelhouse.py download --image IMAGE [--dest wheelhouse]

`requirements` exports uv.lock's runtime dependencies with the granian extra (no workspace
packages, no dev or tool groups, with hashes) to tools/container/requirements.txt, and the
build backend of the workspace packages (the "build-backend" group: hatchling, hatch-vcs) to
tools/container/requirements-build.txt. The Dockerfile installs both with
--require-hashes. `--check` fails instead of rewriting a stale file (CI).

`download` fills the wheelhouse for an air-gapped build (`PIP_NO_INDEX=1`,
`docker build --network none`): the locked wheels for the base image's own Python
(version, glibc and CPU are asked from IMAGE itself, so cp311 wheels for the Debian
base and cp312 wheels for python:3.12-slim) plus the locked build backend that builds
the two workspace packages from source. Needs `uv`, `pip`
(the current interpreter's) and a Docker daemon that has IMAGE.
"""

# ruff: noqa: S603, S607 -- a developer tool running fixed commands (uv, docker, pip) on PATH
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "tools" / "container" / "requirements.txt"
BUILD_REQUIREMENTS = ROOT / "tools" / "container" / "requirements-build.txt"
PACKAGES = (ROOT / "packages" / "iris-model", ROOT / "packages" / "inference-server")
EXPORT = ["uv", "export", "--frozen", "--format", "requirements-txt", "--quiet"]
EXPORTS = {
    # The granian extra too: the image can run either front end (INFERENCE_HTTP_SERVER).
    REQUIREMENTS: [
        *EXPORT,
        "--no-dev",
        "--no-default-groups",
        "--no-emit-workspace",
        "--all-packages",
        "--extra",
        "granian",
    ],
    # --no-emit-project: only the group, not the root's own (runtime) dependencies.
    BUILD_REQUIREMENTS: [*EXPORT, "--only-group", "build-backend", "--no-emit-project"],
}
PROBE = (
    "import json, platform, sys; "
    "print(json.dumps({'version': '%d.%d' % sys.version_info[:2], "
    "'implementation': sys.implementation.name, "
    "'libc': platform.libc_ver(), 'machine': platform.machine()}))"
)


def export_requirements(*, check: bool) -> int:
    """Write (or with check, compare) the image's requirement files from uv.lock."""
    status = 0
    for target, command in EXPORTS.items():
        relative = target.relative_to(ROOT)
        with tempfile.TemporaryDirectory() as tmp:
            fresh = Path(tmp) / target.name
            subprocess.run([*command, "--output-file", str(fresh)], cwd=ROOT, check=True)
            # uv writes its own command line into the header: keep the committed one stable.
            text = fresh.read_text().replace(str(fresh), str(relative))
        if target.exists() and target.read_text() == text:
            print(f"{relative} matches uv.lock")
        elif check:
            print(
                f"{relative} is out of date with uv.lock: run "
                "`python tools/container/wheelhouse.py requirements` and commit it",
                file=sys.stderr,
            )
            status = 1
        else:
            target.write_text(text)
            print(f"wrote {relative} from uv.lock")
    return status


def probe_image(image: str) -> dict[str, object]:
    """Ask the image's own interpreter which wheels it can install."""
    out = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--network",
            "none",
            "--entrypoint",
            "python3",
            image,
            "-c",
            PROBE,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    info: dict[str, object] = json.loads(out)
    return info


def platform_tags(libc: tuple[str, str], machine: str) -> list[str]:
    """Manylinux tags the image's glibc accepts, newest first (PEP 600 plus the legacy aliases)."""
    name, version = libc
    if name != "glibc":
        sys.exit(f"only glibc base images are supported, this one has {name or 'no libc'!r}")
    major, minor = (int(part) for part in version.split(".")[:2])
    tags = [f"manylinux_{major}_{m}_{machine}" for m in range(minor, 4, -1)]
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    tags += [f"{alias}_{machine}" for m, alias in legacy.items() if minor >= m]
    return tags


def download(image: str, dest: Path) -> int:
    """Fill dest with every wheel an offline build of the Dockerfile needs on image."""
    if export_requirements(check=False):
        return 1
    info = probe_image(image)
    version = str(info["version"])
    libc = info["libc"]
    if not isinstance(libc, list):
        sys.exit(f"unexpected answer from {image}: {info}")
    if info["implementation"] != "cpython":
        sys.exit(f"{image} runs {info['implementation']}, not CPython")
    abi = "cp" + version.replace(".", "")
    target = ["--only-binary=:all:", "--python-version", version, "--implementation", "cp"]
    target += ["--abi", abi]
    for tag in platform_tags((str(libc[0]), str(libc[1])), str(info["machine"])):
        target += ["--platform", tag]
    machine = info["machine"]
    print(f"wheelhouse for {image}: CPython {version} ({abi}), {libc[0]} {libc[1]}, {machine}")

    if dest.exists():
        shutil.rmtree(dest)  # only wheels for this image's ABI, nothing stale
    dest.mkdir(parents=True)
    pip = [
        sys.executable,
        "-m",
        "pip",
        "--disable-pip-version-check",
        "download",
        "--dest",
        str(dest),
    ]
    # Hash-checked (the file carries the lock's hashes), exactly the locked versions.
    subprocess.run([*pip, *target, "--requirement", str(REQUIREMENTS)], check=True)
    # The build backend of the workspace packages (the image builds them without isolation).
    subprocess.run([*pip, *target, "--requirement", str(BUILD_REQUIREMENTS)], check=True)
    wheels = sorted(path.name for path in dest.glob("*.whl"))
    size = sum(path.stat().st_size for path in dest.glob("*.whl"))
    print(f"{len(wheels)} wheels, {size / 2**20:.0f} MiB in {dest}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    requirements = commands.add_parser("requirements", help="export uv.lock for the image")
    requirements.add_argument("--check", action="store_true", help="fail if stale, do not write")
    fetch = commands.add_parser("download", help="download the wheelhouse for IMAGE")
    fetch.add_argument("--image", required=True, help="base image the wheels must fit")
    fetch.add_argument("--dest", type=Path, default=ROOT / "wheelhouse")
    args = parser.parse_args(argv)
    if args.command == "requirements":
        return export_requirements(check=args.check)
    return download(args.image, args.dest)


if __name__ == "__main__":
    sys.exit(main())
