"""Hardening of load(): a strict manifest, and model files no other user can swap."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import iris_model
from iris_model import ModelLoadError
from iris_model.persistence import MANIFEST_FILE, MODEL_FILE


def _replace_in_manifest(directory: Path, old: str, new: str) -> None:
    path = directory / MANIFEST_FILE
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_the_manifest_is_strict_json(saved_dir: Path, constant: str) -> None:
    """NaN and Infinity are not JSON: a manifest holding them is refused, not read as floats."""
    _replace_in_manifest(saved_dir, '"model_version": null', f'"model_version": {constant}')
    with pytest.raises(ModelLoadError, match=f"{constant} is not JSON"):
        iris_model.load(saved_dir)
    with pytest.raises(ModelLoadError, match="unreadable manifest"):
        iris_model.read_manifest(saved_dir)


@pytest.mark.parametrize("version", ["1.5", "true", "[1]", '{"v": 1}'])
def test_model_version_must_be_a_string(saved_dir: Path, version: str) -> None:
    """A number or any other non-string model_version is refused with the value named."""
    _replace_in_manifest(saved_dir, '"model_version": null', f'"model_version": {version}')
    with pytest.raises(ModelLoadError, match="model_version must be a string"):
        iris_model.load(saved_dir)


@pytest.mark.parametrize("name", [MODEL_FILE, MANIFEST_FILE])
def test_a_model_file_symlinked_out_of_the_directory_is_refused(
    saved_dir: Path, tmp_path: Path, name: str
) -> None:
    """A symlink to a file elsewhere (here in an open 0777 directory) is refused by name."""
    elsewhere = tmp_path / "open"
    elsewhere.mkdir()
    elsewhere.chmod(0o777)
    (saved_dir / name).rename(elsewhere / name)
    (saved_dir / name).symlink_to(elsewhere / name)
    with pytest.raises(ModelLoadError, match="outside the model directory"):
        iris_model.load(saved_dir)


def test_symlinks_inside_the_directory_load(saved_dir: Path) -> None:
    """A Kubernetes volume links its files into a ..data subdirectory: that stays inside."""
    data = saved_dir / "..data"
    data.mkdir()
    for name in (MODEL_FILE, MANIFEST_FILE):
        (saved_dir / name).rename(data / name)
        (saved_dir / name).symlink_to(Path("..data") / name)
    assert iris_model.load(saved_dir).classes


def _inside(parent: Path, saved_dir: Path, mode: int) -> Path:
    parent.mkdir()
    moved = Path(shutil.move(saved_dir, parent / "model"))
    parent.chmod(mode)
    return moved


def test_a_model_inside_a_world_writable_parent_is_refused(saved_dir: Path, tmp_path: Path) -> None:
    """Anyone could rename the model directory away and put another in its place."""
    model_dir = _inside(tmp_path / "open", saved_dir, 0o777)
    with pytest.raises(ModelLoadError, match=r"open is writable by every user"):
        iris_model.load(model_dir)


def test_a_directory_symlinked_into_a_world_writable_parent_is_refused(
    saved_dir: Path, tmp_path: Path
) -> None:
    """The check follows the resolved path, not the link's own directory."""
    model_dir = _inside(tmp_path / "open", saved_dir, 0o777)
    link = tmp_path / "link"
    link.symlink_to(model_dir)
    with pytest.raises(ModelLoadError, match="writable by every user"):
        iris_model.load(link)


def test_a_sticky_world_writable_parent_is_tolerated(saved_dir: Path, tmp_path: Path) -> None:
    """Like /tmp: with the sticky bit only the owner of the model's entry may rename it."""
    model_dir = _inside(tmp_path / "sticky", saved_dir, 0o1777)
    assert iris_model.load(model_dir).classes


def test_a_group_writable_parent_is_warned_about(
    saved_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Group-writable parents load (shared volumes are), with a warning naming them."""
    model_dir = _inside(tmp_path / "shared", saved_dir, 0o775)
    assert iris_model.load(model_dir).classes
    assert "shared is group-writable" in caplog.text


def test_manifest_edits_still_load_when_harmless(saved_dir: Path) -> None:
    """A string model_version is fine (the strict parser refuses only what JSON does)."""
    manifest = json.loads((saved_dir / MANIFEST_FILE).read_text())
    manifest["model_version"] = "7"
    (saved_dir / MANIFEST_FILE).write_text(json.dumps(manifest))
    assert iris_model.load(saved_dir).version == "7"


def test_swapped_names_of_a_matrix_model_fail_its_golden_pairs(saved_dir: Path) -> None:
    """Iris is fitted on a matrix (no feature_names_in_): the named golden rows catch a swap."""
    manifest = json.loads((saved_dir / MANIFEST_FILE).read_text())
    manifest["feature_names"].reverse()
    manifest["schema"]["columns"].reverse()
    (saved_dir / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="golden pair 0 no longer reproduces"):
        iris_model.load(saved_dir)


def test_a_manifest_from_before_schemas_still_loads(saved_dir: Path) -> None:
    """No schema and positional golden inputs: all-number columns named by feature_names."""
    manifest = json.loads((saved_dir / MANIFEST_FILE).read_text())
    del manifest["schema"]
    for pair in manifest["golden"]:
        pair["input"] = [pair["input"][name] for name in manifest["feature_names"]]
    (saved_dir / MANIFEST_FILE).write_text(json.dumps(manifest))
    model = iris_model.load(saved_dir)
    assert model.schema is not None
    assert {column.type for column in model.schema} == {"number"}
    assert model.uses_fast_path
