"""Saving and loading: the manifest vouches for the file, and load() verifies before use."""

from __future__ import annotations

import json
import os
import pickle
import stat
import warnings
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.exceptions import InconsistentVersionWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import iris_model
import iris_model.dataset
from iris_model import IrisModel, ModelIntegrityError, ModelLoadError, persistence
from iris_model.model import golden_pairs
from iris_model.persistence import MANIFEST_FILE, MODEL_FILE, file_sha256
from iris_model.training import runtime_versions


def _edit_manifest(directory: Path, **changes: Any) -> None:
    path = directory / MANIFEST_FILE
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    path.write_text(json.dumps(manifest))


def _forbid_unpickling(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object, **__: object) -> None:
        pytest.fail("the model file was unpickled before it was verified")

    monkeypatch.setattr(persistence, "restricted_load", refuse)


def test_round_trip_predicts_the_same(trained_model: IrisModel, tmp_path: Path) -> None:
    """A saved and loaded model gives the very same predictions and probabilities."""
    iris_model.save(trained_model, tmp_path)
    loaded = iris_model.load(tmp_path)
    features = [[5.1, 3.5, 1.4, 0.2], [6.0, 2.2, 5.0, 1.5], [5.9, 3.0, 4.2, 1.5]]
    assert loaded.predict(features).tolist() == trained_model.predict(features).tolist()
    assert np.array_equal(loaded.predict_proba(features), trained_model.predict_proba(features))
    assert loaded.uses_fast_path
    assert loaded.sha256 == file_sha256(tmp_path / MODEL_FILE)
    assert "sha256=" in repr(loaded)


def test_manifest_records_digest_versions_schema_and_golden_pairs(saved_dir: Path) -> None:
    """model.json holds everything needed to trust and describe the file."""
    manifest = json.loads((saved_dir / MANIFEST_FILE).read_text())
    artifact = manifest["artifact"]
    assert artifact["sha256"] == file_sha256(saved_dir / MODEL_FILE)
    assert artifact["size"] == (saved_dir / MODEL_FILE).stat().st_size
    assert set(manifest["versions"]) == {"python", "scikit-learn", "numpy", "joblib", "iris-model"}
    assert manifest["classes"] == ["setosa", "versicolor", "virginica"]
    assert len(manifest["feature_names"]) == 4
    assert manifest["metrics"]["accuracy"] > 0.9
    assert manifest["created_at"].endswith("+00:00")
    assert len(manifest["golden"]) == 3
    assert iris_model.read_manifest(saved_dir) == manifest


def test_saved_files_are_world_readable(saved_dir: Path) -> None:
    """A model saved as root at image build time stays readable by the non-root server."""
    for name in (MODEL_FILE, MANIFEST_FILE):
        assert (saved_dir / name).stat().st_mode & stat.S_IROTH


def test_flipped_byte_fails_integrity_before_unpickling(
    saved_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One changed byte in model.joblib is an integrity error, raised before unpickling."""
    path = saved_dir / MODEL_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    _forbid_unpickling(monkeypatch)
    with pytest.raises(ModelIntegrityError, match=r"sha256 \w+ differs from the manifest"):
        iris_model.load(saved_dir)


def test_malicious_pickle_is_refused_without_running(saved_dir: Path, tmp_path: Path) -> None:
    """A swapped-in pickle that would run code is refused, and its code never runs."""
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, (f"touch {marker}",))

    payload = pickle.dumps(Exploit())
    payload += b"\0" * ((saved_dir / MODEL_FILE).stat().st_size - len(payload))  # same size
    (saved_dir / MODEL_FILE).write_bytes(payload)
    with pytest.raises(ModelIntegrityError):
        iris_model.load(saved_dir)
    assert not marker.exists()


def test_truncated_file_fails_on_size(saved_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A truncated file is caught by its size before it is even hashed."""
    path = saved_dir / MODEL_FILE
    path.write_bytes(path.read_bytes()[:-10])
    _forbid_unpickling(monkeypatch)
    with pytest.raises(ModelIntegrityError, match="size"):
        iris_model.load(saved_dir)


def test_other_scikit_learn_version_is_refused(
    saved_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model saved with another scikit-learn version is refused before unpickling."""
    manifest = json.loads((saved_dir / MANIFEST_FILE).read_text())
    _edit_manifest(saved_dir, versions={**manifest["versions"], "scikit-learn": "0.24.2"})
    _forbid_unpickling(monkeypatch)
    with pytest.raises(ModelLoadError, match=r"saved with scikit-learn 0\.24\.2"):
        iris_model.load(saved_dir)


def test_inconsistent_version_warning_is_an_error(
    saved_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """scikit-learn's InconsistentVersionWarning while unpickling stops the load."""

    def warn(*_: object, **__: object) -> None:
        warnings.warn(
            InconsistentVersionWarning(
                estimator_name="LogisticRegression",
                current_sklearn_version="9",
                original_sklearn_version="1",
            ),
            stacklevel=1,
        )

    monkeypatch.setattr(persistence, "restricted_load", warn)
    with pytest.raises(ModelLoadError, match="Trying to unpickle estimator LogisticRegression"):
        iris_model.load(saved_dir)


def test_unpicklable_garbage_is_a_load_error(saved_dir: Path) -> None:
    """A file matching its manifest but not a pickle gives ModelLoadError, not a traceback."""
    path = saved_dir / MODEL_FILE
    path.write_bytes(b"not a pickle at all")
    _edit_manifest(
        saved_dir, artifact={"file": MODEL_FILE, "sha256": file_sha256(path), "size": 19}
    )
    with pytest.raises(ModelLoadError, match="cannot be unpickled"):
        iris_model.load(saved_dir)


def test_changed_golden_pair_fails_the_load(saved_dir: Path) -> None:
    """A model whose golden pairs do not reproduce is not served."""
    manifest = json.loads((saved_dir / MANIFEST_FILE).read_text())
    manifest["golden"][0]["prediction"] = 2
    _edit_manifest(saved_dir, golden=manifest["golden"])
    with pytest.raises(ModelLoadError, match="golden pair 0"):
        iris_model.load(saved_dir)


def test_schema_mismatch_is_refused(saved_dir: Path) -> None:
    """An estimator taking other features than the manifest names is refused."""
    features = np.random.default_rng(0).normal(size=(30, 3))
    joblib.dump(LogisticRegression().fit(features, np.arange(30) % 3), saved_dir / MODEL_FILE)
    path = saved_dir / MODEL_FILE
    _edit_manifest(
        saved_dir,
        artifact={"file": MODEL_FILE, "sha256": file_sha256(path), "size": path.stat().st_size},
    )
    with pytest.raises(ModelLoadError, match="takes 3 features"):
        iris_model.load(saved_dir)


def test_non_classifier_is_refused(saved_dir: Path) -> None:
    """Something that cannot predict probabilities is not a servable model."""
    path = saved_dir / MODEL_FILE
    joblib.dump({"not": "a model"}, path)
    _edit_manifest(
        saved_dir,
        artifact={"file": MODEL_FILE, "sha256": file_sha256(path), "size": path.stat().st_size},
    )
    with pytest.raises(ModelLoadError, match="not a probabilistic classifier"):
        iris_model.load(saved_dir)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / MANIFEST_FILE).unlink(), "no such file"),
        (lambda d: (d / MANIFEST_FILE).write_text("{not json"), "unreadable manifest"),
        (lambda d: (d / MANIFEST_FILE).write_text("[]"), "not a model manifest"),
        (lambda d: _edit_manifest(d, format=99), "not a model manifest"),
        (lambda d: _edit_manifest(d, artifact=None), "no artifact sha256"),
        (lambda d: (d / MODEL_FILE).unlink(), "model.joblib: no such file"),
    ],
    ids=["no-manifest", "bad-json", "not-object", "format", "no-artifact", "no-model"],
)
def test_damaged_directories_give_clear_load_errors(
    saved_dir: Path, damage: Any, message: str
) -> None:
    """Every damaged or missing piece is a ModelLoadError with a clear message."""
    damage(saved_dir)
    with pytest.raises(ModelLoadError, match=message):
        iris_model.load(saved_dir)


def test_load_applies_max_rows(saved_dir: Path) -> None:
    """The loaded model enforces the batch limit given to load()."""
    model = iris_model.load(saved_dir, max_rows=2)
    assert model.max_rows == 2
    with pytest.raises(iris_model.BatchTooLargeError):
        model.predict([[1, 2, 3, 4]] * 3)


def test_save_leaves_no_temporary_files(saved_dir: Path) -> None:
    """Atomic writes clean up after themselves."""
    assert sorted(p.name for p in saved_dir.iterdir()) == [MODEL_FILE, MANIFEST_FILE]


def _reseal(directory: Path) -> None:
    """Recompute the manifest's sha256/size, as an attacker who swaps the file would."""
    path = directory / MODEL_FILE
    _edit_manifest(
        directory,
        artifact={"file": MODEL_FILE, "sha256": file_sha256(path), "size": path.stat().st_size},
    )


def test_command_in_a_resealed_pickle_never_runs(saved_dir: Path, tmp_path: Path) -> None:
    """A pickle that would run a command, with its sha256 recomputed, is refused unrun."""
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, (f"touch {marker}",))

    joblib.dump(Exploit(), saved_dir / MODEL_FILE)
    _reseal(saved_dir)
    with pytest.raises(ModelLoadError, match=r"refused, the pickle names posix\.system"):
        iris_model.load(saved_dir)
    assert not marker.exists()


def test_reversed_classes_in_the_manifest_fail_the_load(saved_dir: Path) -> None:
    """Relabelling the classes (setosa answered as virginica) fails the golden labels."""
    manifest = json.loads((saved_dir / MANIFEST_FILE).read_text())
    _edit_manifest(saved_dir, classes=manifest["classes"][::-1])
    with pytest.raises(ModelLoadError, match=r"golden pair 0 .* labelled 'virginica'"):
        iris_model.load(saved_dir)


def test_golden_pairs_record_labels(saved_dir: Path) -> None:
    """Each golden pair carries the label the model answered when it was saved."""
    manifest = json.loads((saved_dir / MANIFEST_FILE).read_text())
    assert [pair["label"] for pair in manifest["golden"]] == manifest["classes"]


def test_model_digest_is_pinnable(saved_dir: Path) -> None:
    """load(digest=...) accepts the directory's own digest and exposes it."""
    digest = iris_model.model_digest(saved_dir)
    assert digest.startswith("sha256:")
    assert len(digest) == len("sha256:") + 64
    assert iris_model.load(saved_dir, digest=digest).digest == digest
    assert iris_model.load(saved_dir).digest == digest


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: {"versions": {**m["versions"], "numpy": "1.0.0"}},
        lambda m: {"feature_names": m["feature_names"][::-1]},
        lambda m: {"created_at": "2020-01-01T00:00:00+00:00"},
    ],
    ids=["versions", "feature-names", "any-field"],
)
def test_a_pinned_digest_refuses_an_edited_manifest(
    saved_dir: Path, monkeypatch: pytest.MonkeyPatch, edit: Any
) -> None:
    """With the digest pinned, no manifest field can change, and nothing is unpickled."""
    digest = iris_model.model_digest(saved_dir)
    _edit_manifest(saved_dir, **edit(json.loads((saved_dir / MANIFEST_FILE).read_text())))
    assert iris_model.model_digest(saved_dir) != digest
    _forbid_unpickling(monkeypatch)
    with pytest.raises(ModelIntegrityError, match="differs from the pinned"):
        iris_model.load(saved_dir, digest=digest)


def test_estimator_feature_names_and_labels_are_cross_checked(
    saved_dir: Path, trained_model: IrisModel
) -> None:
    """Feature names and string classes the estimator knows must match the manifest's."""
    features, target = iris_model.dataset.load_dataset()
    labels = np.array(["setosa", "versicolor", "virginica"], dtype=object)
    estimator = LogisticRegression(max_iter=500).fit(features, labels[target])
    estimator.feature_names_in_ = np.array(trained_model.feature_names, dtype=object)
    joblib.dump(estimator, saved_dir / MODEL_FILE)
    manifest = json.loads((saved_dir / MANIFEST_FILE).read_text())
    _reseal(saved_dir)
    _edit_manifest(saved_dir, feature_names=["a", "b", "c", "d"])
    with pytest.raises(ModelLoadError, match="feature names differ"):
        iris_model.load(saved_dir)
    _edit_manifest(saved_dir, feature_names=manifest["feature_names"], classes=["x", "y", "z"])
    with pytest.raises(ModelLoadError, match="classes differ"):
        iris_model.load(saved_dir)


def test_world_writable_model_is_refused(saved_dir: Path) -> None:
    """A model file or directory any user could replace is not loaded."""
    (saved_dir / MODEL_FILE).chmod(0o666)
    with pytest.raises(ModelLoadError, match="writable by every user"):
        iris_model.load(saved_dir)
    (saved_dir / MODEL_FILE).chmod(0o644)
    saved_dir.chmod(0o777)
    with pytest.raises(ModelLoadError, match="writable by every user"):
        iris_model.load(saved_dir)


def test_group_writable_model_is_warned_about(
    saved_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A group-writable model still loads (fsGroup volumes are), with a warning in the log."""
    (saved_dir / MANIFEST_FILE).chmod(0o664)
    iris_model.load(saved_dir)
    assert f"{MANIFEST_FILE} is group-writable" in caplog.text


@pytest.mark.parametrize(
    "make",
    [
        lambda: RandomForestClassifier(n_estimators=5, random_state=0),
        lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
        lambda: HistGradientBoostingClassifier(max_iter=5, random_state=0),
        lambda: GradientBoostingClassifier(n_estimators=5, random_state=0),
    ],
    ids=["random-forest", "scaler-logreg", "hist-gradient-boosting", "gradient-boosting"],
)
def test_other_estimators_save_and_load(make: Any, tmp_path: Path) -> None:
    """Estimators users bring go through save() and the verifying load()."""
    features, target = iris_model.dataset.load_dataset()
    model = IrisModel(make().fit(features, target))
    model.metadata = {
        "versions": runtime_versions(),
        "golden": golden_pairs(model, features[::50]),
    }
    iris_model.save(model, tmp_path)
    loaded = iris_model.load(tmp_path)
    assert np.array_equal(loaded.predict_proba(features), model.predict_proba(features))


def test_world_writable_directory_on_a_read_only_mount_loads(
    saved_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ConfigMap volume's directory is 0777 but mounted read-only: nobody can write it."""
    saved_dir.chmod(0o777)
    real_statvfs = os.statvfs

    def read_only(path: Any) -> Any:
        result = real_statvfs(path)
        fields = list(result)
        fields[8] |= os.ST_RDONLY  # f_flag
        return os.statvfs_result(fields)

    monkeypatch.setattr(os, "statvfs", read_only)
    assert iris_model.load(saved_dir).classes
