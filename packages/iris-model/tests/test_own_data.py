"""Your own data: any classifier, string labels, evaluation, scikit-learn tools, save/load."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.inspection import permutation_importance
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

import iris_model
from iris_model import IrisModel, ModelSaveError, ModelVersionWarning, TrainingError
from iris_model.persistence import MANIFEST_FILE


@pytest.fixture(scope="module")
def wine() -> tuple[pd.DataFrame, pd.Series]:
    bunch = load_wine(as_frame=True)
    names = np.array(["barolo", "grignolino", "barbera"])
    return bunch.data, pd.Series(names[bunch.target], name="cultivar")


@pytest.fixture(scope="module")
def forest(wine: tuple[pd.DataFrame, pd.Series]) -> iris_model.TrainingResult:
    x, y = wine
    return iris_model.train(x, y, estimator=RandomForestClassifier(n_estimators=20), seed=1)


def test_random_forest_on_own_data(forest: iris_model.TrainingResult, wine: tuple) -> None:
    """Feature names come from the frame, classes from the string labels, split returned."""
    model, evaluation = forest
    x, _ = wine
    assert model.feature_names == tuple(x.columns)
    assert model.classes == ("barbera", "barolo", "grignolino")
    assert type(model.estimator).__name__ == "RandomForestClassifier"
    assert evaluation.accuracy > 0.85
    assert evaluation.n_test == len(forest.X_test) == len(forest.y_test) == 36
    assert isinstance(forest.X_test, pd.DataFrame)
    assert set(forest.X_test.index) <= set(x.index)
    assert model.predict(forest.X_test).dtype.kind in "UO"  # labels as given
    assert iris_model.evaluate(model, forest.X_test, forest.y_test) == iris_model.evaluate(
        model, forest.X_test[x.columns[::-1]], forest.y_test
    )


def test_random_forest_saves_and_loads(forest: iris_model.TrainingResult, tmp_path: Path) -> None:
    """A RandomForest trained on your data saves, loads and answers the same."""
    model = forest.model
    iris_model.save(model, tmp_path, version="wine-1")
    loaded = iris_model.load(tmp_path)
    assert loaded.version == "wine-1"
    assert loaded.feature_names == model.feature_names
    assert loaded.classes == model.classes
    assert loaded.evaluation == forest.evaluation
    assert np.array_equal(loaded.predict_proba(forest.X_test), model.predict_proba(forest.X_test))
    manifest = json.loads((tmp_path / MANIFEST_FILE).read_text())
    assert manifest["model_version"] == "wine-1"
    assert manifest["estimator"] == "RandomForestClassifier"
    assert len(manifest["golden"]) == 3


def test_hand_wrapped_model_saves_and_loads(wine: tuple, tmp_path: Path) -> None:
    """IrisModel(estimator) built by hand gets a complete manifest and loads (no evaluation)."""
    x, y = wine
    estimator = RandomForestClassifier(n_estimators=5, random_state=0).fit(x.to_numpy(), y)
    model = IrisModel(estimator, version="v7")
    assert model.feature_names == tuple(f"x{k}" for k in range(13))
    loaded = iris_model.load(iris_model.save(model, tmp_path))
    assert loaded.version == "v7"
    assert loaded.evaluation is None
    assert len(loaded.metadata["golden"]) == 5
    assert loaded.predict(x.to_numpy()[:5]).tolist() == estimator.predict(x.to_numpy()[:5]).tolist()


def test_params_set_the_default_estimator(wine: tuple) -> None:
    """**params are the LogisticRegression's hyperparameters; a Pipeline works as estimator."""
    x, y = wine
    model = iris_model.train(x, y, C=0.05, max_iter=5000).model
    assert model.estimator.C == 0.05
    assert model.uses_fast_path
    piped = iris_model.train(
        x, y, estimator=make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=5))
    )
    assert piped.evaluation.accuracy > 0.8


def test_refit_full_uses_every_row(wine: tuple) -> None:
    """refit_full refits on all rows after the held-out evaluation."""
    x, y = wine
    forest = RandomForestClassifier(random_state=0)
    result = iris_model.train(x, y, refit_full=True, estimator=forest, n_estimators=5)
    assert result.model.estimator.n_estimators == 5
    assert result.model.metadata["training"]["refit_full"] is True
    assert result.model.metadata["training"]["n_rows"] == len(x)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"estimator": LinearSVC()}, "classifier .* with predict_proba, got LinearSVC"),
        ({"estimator": StandardScaler()}, "got StandardScaler"),
        ({"test_size": 0}, "test_size must be between 0 and 1"),
        ({"test_size": 1.5}, "test_size must be between 0 and 1"),
        ({"cv_folds": 1}, "cv_folds must be 0"),
        ({"nonsense": 3}, "invalid hyperparameter"),
        ({"C": -1.0}, "could not be fitted"),
    ],
    ids=["no-proba", "not-classifier", "test-size-0", "test-size-big", "folds", "param", "bad-C"],
)
def test_unusable_settings_are_clear_errors(wine: tuple, kwargs: dict, message: str) -> None:
    """Every unusable setting is a TrainingError that says what is wrong."""
    x, y = wine
    with pytest.raises(TrainingError, match=message):
        iris_model.train(x, y, **kwargs)


def test_unusable_data_is_a_clear_error(wine: tuple) -> None:
    """Mismatched lengths, missing labels, one-sided X/y, a single-member class."""
    x, y = wine
    with pytest.raises(TrainingError, match="178 rows but 10 labels"):
        iris_model.train(x, y[:10])
    with pytest.raises(TrainingError, match="missing labels"):
        iris_model.train(x, y.astype(object).where(y.index != 3, None))
    with pytest.raises(TrainingError, match="both X and y"):
        iris_model.train(x)
    lonely = y.copy()
    lonely.iloc[0] = "lonely"
    with pytest.raises(TrainingError, match="cannot split"):
        iris_model.train(x, lonely)


def test_scikit_learn_tools_take_the_model(forest: iris_model.TrainingResult) -> None:
    """cross_val_score and permutation_importance work on a trained model directly."""
    model = forest.model
    scores = cross_val_score(model, forest.X_test, forest.y_test, cv=3)
    assert scores.shape == (3,)
    assert scores.mean() > 0.6
    result = permutation_importance(
        model, forest.X_test, forest.y_test, n_repeats=3, random_state=0
    )
    assert result.importances_mean.shape == (13,)
    assert result.importances_mean.max() > 0


def test_save_refuses_what_would_not_load(trained_model: IrisModel, tmp_path: Path) -> None:
    """An unpicklable estimator or an output path that is a file is refused with the reason."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ModelSaveError, match="not a directory"):
        iris_model.save(trained_model, blocker)
    unfitted = IrisModel(RandomForestClassifier())
    with pytest.raises(ModelSaveError, match="not fitted"):
        iris_model.save(unfitted, tmp_path / "x")
    model = IrisModel(trained_model.estimator, metadata=trained_model.metadata)
    model.estimator = _Unpicklable(trained_model.estimator)
    with pytest.raises(ModelSaveError, match="cannot be pickled"):
        iris_model.save(model, tmp_path / "y")
    assert not (tmp_path / "y" / MANIFEST_FILE).exists()


class _Unpicklable:
    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.hook = lambda: None  # lambdas cannot be pickled

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_version_mismatch_can_be_allowed(saved_dir: Path) -> None:
    """Another scikit-learn version is refused, naming both versions and the override.

    Allowed, it loads with a warning, and the golden pairs still decide.
    """
    manifest = json.loads((saved_dir / MANIFEST_FILE).read_text())
    manifest["versions"]["scikit-learn"] = "1.0.0"
    (saved_dir / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(iris_model.ModelLoadError) as info:
        iris_model.load(saved_dir)
    message = str(info.value)
    assert "1.0.0" in message
    assert "allow_version_mismatch=True" in message
    assert sklearn.__version__ in message
    with pytest.warns(ModelVersionWarning, match="loading anyway"):
        model = iris_model.load(saved_dir, allow_version_mismatch=True)
    assert model.predict([5.1, 3.5, 1.4, 0.2]).tolist() == [0]
    manifest["golden"][0]["prediction"] = 2
    (saved_dir / MANIFEST_FILE).write_text(json.dumps(manifest))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelVersionWarning)
        with pytest.raises(iris_model.ModelLoadError, match="golden pair 0"):
            iris_model.load(saved_dir, allow_version_mismatch=True)


def test_model_version_round_trip(trained_model: IrisModel, tmp_path: Path) -> None:
    """save(version=) records model_version, defaulting to model.version; load restores it."""
    model = IrisModel(trained_model.estimator, metadata=trained_model.metadata, version="a")
    assert iris_model.load(iris_model.save(model, tmp_path / "1")).version == "a"
    assert iris_model.load(iris_model.save(model, tmp_path / "2", version="b")).version == "b"
    assert model.version == "b"
    assert iris_model.read_manifest(tmp_path / "2")["model_version"] == "b"
    plain = IrisModel(trained_model.estimator, metadata=trained_model.metadata)
    assert iris_model.load(iris_model.save(plain, tmp_path / "3")).version is None
