"""The factory: model loading, default training, refusal to start on a bad model."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

import iris_model
from inference_server.app import MODEL_KEY

from .conftest import SETOSA


def test_default_model_is_trained_and_logged(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    """Without a model directory the default model is trained, and the log says so."""
    with caplog.at_level(logging.INFO, logger="inference_server"):
        app = make_app()
    assert "trained the default model" in caplog.text
    assert app.extensions[MODEL_KEY].sha256 is None


def test_saved_model_is_loaded(make_app: Callable[..., Flask], model_dir: Path) -> None:
    """INFERENCE_MODEL_DIR serves the saved model (with its sha256)."""
    app = make_app(MODEL_DIR=str(model_dir))
    model = app.extensions[MODEL_KEY]
    assert model.sha256
    response = app.test_client().post("/predict", json={"features": SETOSA})
    assert response.get_json()["prediction"] == 0


def test_tampered_model_stops_start_up(
    make_app: Callable[..., Flask],
    model_dir: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A model file that fails its sha256 check raises ModelLoadError with a clear log line."""
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    artifact = copy / "model.joblib"
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF
    artifact.write_bytes(bytes(data))
    with pytest.raises(iris_model.ModelLoadError):
        make_app(MODEL_DIR=str(copy))
    assert "refusing to serve the model" in caplog.text


def test_missing_model_dir_stops_start_up(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    """A configured directory without a model is a ModelLoadError."""
    with pytest.raises(iris_model.ModelLoadError):
        make_app(MODEL_DIR=str(tmp_path / "absent"))


def test_create_app_reads_no_env_per_request(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Changing INFERENCE_* after start-up changes nothing: config is read once."""
    app = make_app()
    monkeypatch.setenv("INFERENCE_MAX_ROWS", "1")
    response = app.test_client().post("/predict", json={"instances": [SETOSA, SETOSA]})
    assert response.status_code == 200


def test_pinned_model_digest(
    make_app: Callable[..., Flask], model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """INFERENCE_MODEL_DIGEST serves only that directory; any other digest stops start-up."""
    digest = iris_model.model_digest(model_dir)
    with caplog.at_level(logging.INFO, logger="inference_server"):
        app = make_app(MODEL_DIR=str(model_dir), MODEL_DIGEST=digest)
    assert app.extensions[MODEL_KEY].digest == digest
    assert f"loaded model {digest}" in caplog.text
    with pytest.raises(iris_model.ModelIntegrityError, match="differs from the pinned"):
        make_app(MODEL_DIR=str(model_dir), MODEL_DIGEST="sha256:" + "0" * 64)
    with pytest.raises(iris_model.ModelLoadError, match="needs a model directory"):
        make_app(MODEL_DIGEST=digest)


def test_version_mismatch_is_refused_unless_allowed(
    make_app: Callable[..., Flask],
    model_dir: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Another scikit-learn version stops start-up; the setting serves it, with a warning."""
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    manifest_path = copy / "model.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["versions"]["scikit-learn"] = "1.0.0"
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(iris_model.ModelLoadError, match="allow_version_mismatch"):
        make_app(MODEL_DIR=str(copy))
    with caplog.at_level(logging.WARNING, logger="inference_server"):
        app = make_app(MODEL_DIR=str(copy), ALLOW_VERSION_MISMATCH="true")
    assert "saved with scikit-learn 1.0.0" in caplog.text
    response = app.test_client().post("/predict", json={"features": SETOSA})
    assert response.get_json()["prediction"] == 0


def test_unpinned_model_dir_warns(
    make_app: Callable[..., Flask], model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A model loaded from a directory without INFERENCE_MODEL_DIGEST logs a warning."""
    with caplog.at_level(logging.WARNING, logger="inference_server"):
        make_app(MODEL_DIR=str(model_dir))
    unpinned = [r for r in caplog.records if "INFERENCE_MODEL_DIGEST is not set" in r.message]
    assert [r.levelno for r in unpinned] == [logging.WARNING]
    caplog.clear()
    digest = iris_model.model_digest(model_dir)
    with caplog.at_level(logging.WARNING, logger="inference_server"):
        make_app(MODEL_DIR=str(model_dir), MODEL_DIGEST=digest)
    assert "INFERENCE_MODEL_DIGEST is not set" not in caplog.text
