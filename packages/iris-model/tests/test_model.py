"""The model object: predictions, labels, repr and the golden self-test."""

from __future__ import annotations

import copy

import pytest

import iris_model.model as model_module
from iris_model import InvalidInputError, IrisModel, ModelLoadError


def test_seed_request_is_setosa(trained_model: IrisModel) -> None:
    """The original service's example request predicts class 0, setosa."""
    assert trained_model.predict([5.1, 3.5, 1.4, 0.2]).tolist() == [0]
    assert trained_model.predict_labels([5.1, 3.5, 1.4, 0.2]) == ["setosa"]


def test_probabilities_sum_to_one(trained_model: IrisModel) -> None:
    """Each row's probabilities cover the three classes and sum to 1."""
    probabilities = trained_model.predict_proba([[5.1, 3.5, 1.4, 0.2], [6.3, 3.3, 6.0, 2.5]])
    assert probabilities.shape == (2, 3)
    assert probabilities.sum(axis=1) == pytest.approx([1.0, 1.0])
    assert probabilities[1].argmax() == 2


def test_repr_names_estimator_classes_and_accuracy(trained_model: IrisModel) -> None:
    """repr() says what the model is at a glance in a notebook."""
    text = repr(trained_model)
    assert text.startswith(
        "IrisModel(LogisticRegression, classes=('setosa', 'versicolor', 'virginica')"
    )
    assert "accuracy=0.9" in text
    assert "sha256" not in text  # not saved yet
    assert trained_model.sha256 is None


def test_self_test_passes_on_a_trained_model(trained_model: IrisModel) -> None:
    """The golden pairs recorded at training reproduce."""
    trained_model.self_test()


def test_self_test_fails_on_a_changed_golden_pair(trained_model: IrisModel) -> None:
    """A golden pair that no longer reproduces is a ModelLoadError."""
    meta = copy.deepcopy(trained_model.metadata)
    meta["golden"][1]["probabilities"][0] += 1e-6
    model = IrisModel(trained_model.estimator, metadata=meta)
    with pytest.raises(ModelLoadError, match="golden pair 1 no longer reproduces"):
        model.self_test()


def test_self_test_needs_golden_pairs(trained_model: IrisModel) -> None:
    """A model without golden pairs cannot vouch for itself."""
    with pytest.raises(ModelLoadError, match="no golden"):
        IrisModel(trained_model.estimator).self_test()


def test_classify_validates_once_and_answers_both(
    trained_model: IrisModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """classify() validates the rows once and gives predict()'s and predict_proba()'s answers."""
    rows = [[5.1, 3.5, 1.4, 0.2], [6.3, 3.3, 6.0, 2.5]]
    calls: list[object] = []
    original = model_module.to_matrix

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(args[0])
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(model_module, "to_matrix", counting)
    indices, probabilities = trained_model.classify(rows, probabilities=True)
    assert calls == [rows]
    monkeypatch.undo()
    assert indices.tolist() == trained_model.predict(rows).tolist()
    assert probabilities is not None
    assert (probabilities == trained_model.predict_proba(rows)).all()
    assert trained_model.classify(rows)[1] is None
    with pytest.raises(InvalidInputError):
        trained_model.classify([[1, 2, 3]])
