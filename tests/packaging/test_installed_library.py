"""The iris-model wheel, installed alone in a fresh virtual environment, does its whole job.

Run by ``nox -s build``, which builds the wheel and installs it with nothing but pytest
beside it, so these tests see the package as users get it from ``pip install``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import iris_model

pytestmark = pytest.mark.skipif(
    os.environ.get("IRIS_MODEL_WHEEL_TEST") != "1",
    reason="run by `nox -s build` against the installed wheel, not the source tree",
)


def test_imported_from_site_packages_not_the_source_tree() -> None:
    """The package under test is the installed wheel."""
    assert "site-packages" in Path(iris_model.__file__).parts
    assert iris_model.__version__ != "0.0.0+unknown"


def test_train_save_load_predict_equals_sklearn(tmp_path: Path) -> None:
    """Train, save, load and predict from Python; the answers are sklearn's own."""
    model, evaluation = iris_model.train(seed=3)
    assert evaluation.accuracy >= 0.9
    loaded = iris_model.load(iris_model.save(model, tmp_path))
    rows = np.random.default_rng(3).uniform(0, 8, size=(50, 4))
    assert loaded.predict(rows).tolist() == model.estimator.predict(rows).tolist()
    np.testing.assert_allclose(
        loaded.predict_proba(rows), model.estimator.predict_proba(rows), rtol=0, atol=1e-12
    )


def test_cli_entry_point(tmp_path: Path) -> None:
    """The installed `iris-model` console script trains, verifies and predicts."""
    script = Path(sys.executable).with_name("iris-model")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([script, *args], capture_output=True, text=True, check=False)

    assert run("train", "--output", str(tmp_path)).returncode == 0
    assert run("verify", str(tmp_path)).returncode == 0
    done = run("predict", str(tmp_path), "5.1", "3.5", "1.4", "0.2", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"prediction": 0, "label": "setosa"}
    (tmp_path / "model.joblib").write_bytes(b"tampered")
    failed = run("verify", str(tmp_path))
    assert failed.returncode == 1
    assert "iris-model: error:" in failed.stderr
