"""Wrapping an estimator by hand: schema defaults, mismatches, fitting, evaluate()'s checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.svm import LinearSVC

import iris_model
from iris_model import FEATURE_NAMES, InvalidInputError, IrisModel, IrisModelError
from iris_model.dataset import load_dataset


def test_an_unfitted_model_says_so_and_fit_names_features_from_the_frame() -> None:
    """Before fit() every prediction is a clear error; fit() on a frame takes its columns."""
    model = IrisModel(RandomForestClassifier(n_estimators=5, random_state=0))
    assert "not fitted" in repr(model)
    with pytest.raises(IrisModelError, match="not fitted yet"):
        model.predict([[1, 2, 3, 4]])
    features, target = load_dataset()
    frame = pd.DataFrame(features, columns=["a", "b", "c", "d"])
    assert model.fit(frame, target) is model
    assert model.feature_names == ("a", "b", "c", "d")
    assert model.classes == ("setosa", "versicolor", "virginica")  # labels 0, 1, 2
    assert model.predict(frame[["d", "c", "b", "a"]]).tolist() == model.predict(features).tolist()
    array_model = IrisModel(RandomForestClassifier(n_estimators=5)).fit(features[:, :3], target)
    assert array_model.feature_names == ("x0", "x1", "x2")


def test_schema_mismatches_are_refused() -> None:
    """Feature names or class labels that do not fit the estimator are refused at once."""
    features, target = load_dataset()
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(features, target)
    with pytest.raises(IrisModelError, match="takes 4 features but 2 feature names"):
        IrisModel(forest, feature_names=["a", "b"])
    with pytest.raises(IrisModelError, match="has 3 classes but 1 class labels"):
        IrisModel(forest, classes=["only"])
    with pytest.raises(IrisModelError, match="not a classifier with predict_proba"):
        IrisModel(LinearSVC().fit(features, target))
    assert IrisModel(forest).feature_names == FEATURE_NAMES


def test_evaluate_checks_labels_and_lengths(trained_model: IrisModel) -> None:
    """An unknown label or a length mismatch is an InvalidInputError, not a wrong score."""
    features, target = load_dataset()
    evaluation = iris_model.evaluate(trained_model, features, target)
    assert evaluation.n_test == 150
    assert evaluation.n_train is None
    assert evaluation.cv_folds is None
    assert "test 150" in str(evaluation)
    with pytest.raises(InvalidInputError, match="label 7 is not one of the model's classes"):
        iris_model.evaluate(trained_model, features[:2], [0, 7])
    with pytest.raises(InvalidInputError, match="label 'setosa' is not one"):
        iris_model.evaluate(trained_model, features[:1], np.array(["setosa"]))
    with pytest.raises(InvalidInputError, match="150 rows but 3 labels"):
        iris_model.evaluate(trained_model, features, [0, 1, 2])
