"""Training is deterministic and its evaluation is complete and plausible."""

from __future__ import annotations

import json

import numpy as np
import pytest

import iris_model
from iris_model import CLASS_NAMES, FEATURE_NAMES, TrainingResult


def test_same_seed_gives_the_same_model_and_metrics(training: TrainingResult) -> None:
    """Training twice with one seed gives identical coefficients and evaluation."""
    again = iris_model.train(seed=42)
    np.testing.assert_array_equal(again.model.estimator.coef_, training.model.estimator.coef_)
    assert again.evaluation == training.evaluation


def test_another_seed_gives_another_split() -> None:
    """The seed drives the split: a different seed gives a different model."""
    a, b = iris_model.train(seed=1).model, iris_model.train(seed=2).model
    assert not np.array_equal(a.estimator.coef_, b.estimator.coef_)


def test_evaluation_is_complete(training: TrainingResult) -> None:
    """It reports accuracy, macro F1, per-class scores, the confusion matrix and CV."""
    evaluation = training.evaluation
    assert 0.9 <= evaluation.accuracy <= 1.0
    assert 0.9 <= evaluation.macro_f1 <= 1.0
    assert 0.9 <= evaluation.cv_accuracy_mean <= 1.0
    assert evaluation.cv_accuracy_std >= 0
    assert (evaluation.n_train, evaluation.n_test, evaluation.cv_folds) == (120, 30, 5)
    assert set(evaluation.per_class) == set(CLASS_NAMES)
    matrix = np.asarray(evaluation.confusion_matrix)
    assert matrix.shape == (3, 3)
    assert matrix.sum() == 30
    assert np.trace(matrix) / matrix.sum() == evaluation.accuracy
    json.dumps(evaluation.as_dict())  # plain data only


def test_evaluation_prints_as_a_readable_report(training: TrainingResult) -> None:
    """str(evaluation) is a small report naming every class."""
    text = str(training.evaluation)
    assert text.startswith("accuracy 0.")
    for name in CLASS_NAMES:
        assert name in text
    assert "confusion matrix" in text


def test_test_size_controls_the_split() -> None:
    """test_size decides how many flowers are held out."""
    assert iris_model.train(test_size=0.5).evaluation.n_test == 75


def test_model_carries_its_metadata(training: TrainingResult) -> None:
    """The trained model knows its schema, versions, metrics and golden pairs."""
    model = training.model
    assert model.classes == CLASS_NAMES
    assert model.feature_names == FEATURE_NAMES
    assert model.n_features == 4
    meta = model.metadata
    assert meta["training"]["seed"] == 42
    assert meta["versions"]["scikit-learn"]
    assert meta["metrics"]["accuracy"] == training.evaluation.accuracy
    assert len(meta["golden"]) == 3
    assert meta["golden"][0]["input"] == dict(zip(FEATURE_NAMES, [5.1, 3.5, 1.4, 0.2], strict=True))
    assert meta["schema"]["columns"][0] == {
        "name": FEATURE_NAMES[0], "type": "number", "nullable": False
    }  # fmt: skip
    assert meta["golden"][0]["prediction"] == 0


def test_a_training_result_indexes_like_it_unpacks(training: TrainingResult) -> None:
    """result[0] and result[1] are what `model, evaluation = result` gives."""
    model, evaluation = training
    assert training[0] is model
    assert training[1] is evaluation
    assert training[-1] is evaluation
    assert len(training) == 2
    with pytest.raises(IndexError):
        training[2]


def test_notebook_reprs_are_short_and_tabular(training: TrainingResult) -> None:
    """Reprs fit on a line or two; the HTML shows the schema and per-class scores as tables."""
    assert len(repr(training)) < 400
    assert "X_test=ndarray of 30 rows" in repr(training)
    assert repr(training.evaluation).startswith("Evaluation(accuracy=0.967, macro_f1=")
    html = training._repr_html_()
    assert html.count("<table>") == 2
    assert "<td>sepal length (cm)</td><td>number</td>" in html
    assert "<th>versicolor</th>" in html
    bundle = training.model._repr_mimebundle_()
    assert bundle["text/plain"] == repr(training.model)
