"""Shared fixtures: a model trained once per session (milliseconds), and a saved copy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import iris_model
from iris_model import IrisModel, TrainingResult


@pytest.fixture(scope="session")
def training() -> TrainingResult:
    return iris_model.train(seed=42)


@pytest.fixture(scope="session")
def trained_model(training: TrainingResult) -> IrisModel:
    return training.model


@pytest.fixture(scope="session")
def _saved_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model, _ = iris_model.train(seed=42)
    return iris_model.save(model, tmp_path_factory.mktemp("model"))


@pytest.fixture
def saved_dir(_saved_once: Path, tmp_path: Path) -> Path:
    """A fresh copy of a saved model directory that a test may damage."""
    return Path(shutil.copytree(_saved_once, tmp_path / "model"))
