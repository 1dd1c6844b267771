"""The built distributions: one version from git for both packages, and the licence inside.

Run by ``nox -s dist`` (and so ``nox -s build``) on the files it just built into ``DIST_DIR``,
in a venv that has the locked build backend, so the pretend-version build below needs no
network. ``SETUPTOOLS_SCM_PRETEND_VERSION=1.2.3 nox -s build`` checks that a build at tag
v1.2.3 says 1.2.3.
"""

from __future__ import annotations

import email.parser
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"iris-model": "iris_model", "inference-server": "inference_server"}
DIST_DIR = os.environ.get("DIST_DIR")

pytestmark = pytest.mark.skipif(
    not DIST_DIR, reason="run by `nox -s dist` on the distributions it built (DIST_DIR)"
)


def expected_version() -> str:
    """What hatch-vcs derives from git here (or the pretend version, when set)."""
    from setuptools_scm import get_version  # noqa: PLC0415 - only in the dist session's venv

    return str(get_version(root=str(ROOT)))


def wheel_metadata(wheel: Path) -> email.message.Message:
    """The wheel's METADATA, parsed."""
    with zipfile.ZipFile(wheel) as archive:
        (name,) = (n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return email.parser.BytesParser().parsebytes(archive.read(name))


def sdist_metadata(sdist: Path) -> email.message.Message:
    """The sdist's top-level PKG-INFO, parsed."""
    with tarfile.open(sdist) as archive:
        (member,) = (m for m in archive.getmembers() if m.name.count("/") == 1 and
                     m.name.endswith("/PKG-INFO"))  # fmt: skip
        stream = archive.extractfile(member)
        assert stream is not None
        return email.parser.BytesParser().parsebytes(stream.read())


def one(pattern: str) -> Path:
    """The single file in DIST_DIR matching pattern."""
    (path,) = Path(str(DIST_DIR)).glob(pattern)
    return path


@pytest.mark.parametrize("package", list(PACKAGES))
def test_both_packages_carry_the_git_version(package: str) -> None:
    """Wheel and sdist of each package have the version hatch-vcs derives from git."""
    version = expected_version()
    import_name = PACKAGES[package]
    assert wheel_metadata(one(f"{import_name}-*.whl"))["Version"] == version
    assert sdist_metadata(one(f"{import_name}-*.tar.gz"))["Version"] == version


@pytest.mark.parametrize("package", list(PACKAGES))
def test_the_mit_licence_ships_in_every_distribution(package: str) -> None:
    """License-Expression MIT, and the root LICENSE text itself, in the wheel and the sdist."""
    import_name = PACKAGES[package]
    licence = (ROOT / "LICENSE").read_bytes()
    assert (ROOT / "packages" / package / "LICENSE").read_bytes() == licence  # a true copy
    wheel = one(f"{import_name}-*.whl")
    metadata = wheel_metadata(wheel)
    assert metadata["License-Expression"] == "MIT"
    assert metadata.get_all("License-File") == ["LICENSE"]
    with zipfile.ZipFile(wheel) as archive:
        (name,) = (n for n in archive.namelist() if n.endswith(".dist-info/licenses/LICENSE"))
        assert archive.read(name) == licence
    with tarfile.open(one(f"{import_name}-*.tar.gz")) as archive:
        (member,) = (m for m in archive.getmembers() if m.name.endswith("/LICENSE"))
        stream = archive.extractfile(member)
        assert stream is not None
        assert stream.read() == licence


@pytest.mark.parametrize("package", list(PACKAGES))
def test_a_build_at_tag_v1_2_3_says_1_2_3(package: str, tmp_path: Path) -> None:
    """With the tool's pretend-version variable (what the image build sets), the wheel is 1.2.3."""
    env = {**os.environ, "SETUPTOOLS_SCM_PRETEND_VERSION": "1.2.3"}
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--wheel", "--outdir", str(tmp_path),
         str(ROOT / "packages" / package)],
        check=True, env=env, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("*.whl")
    assert wheel.name.startswith(f"{PACKAGES[package]}-1.2.3-")
    assert wheel_metadata(wheel)["Version"] == "1.2.3"
