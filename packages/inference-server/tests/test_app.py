"""The factory: model loading, default training, refusal to start on a bad model."""

from __future__ import annotations

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
