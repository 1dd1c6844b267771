"""The scorer gives exactly scikit-learn's classes and probabilities, for any shape."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from iris_model import InvalidInputError, IrisModel
from iris_model.dataset import load_dataset
from iris_model.scoring import EstimatorScorer, LinearScorer, scorer_for

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
# Far inside what the validation accepts for the Iris model (its scorer's bound is ~2e299),
# and far beyond any flower: magnitudes where float64 rounding differs most.
MAX_ABS_FEATURE = 1e12
accepted = st.floats(min_value=-MAX_ABS_FEATURE, max_value=MAX_ABS_FEATURE, width=64)
# Realistic magnitudes, where probabilities are not all saturated at 0 or 1.
measurements = st.floats(min_value=-50.0, max_value=50.0, allow_nan=False, width=64)


def _sklearn(model: IrisModel, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return model.estimator.predict(matrix), model.estimator.predict_proba(matrix)


@settings(max_examples=300, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 32), st.just(4)), elements=accepted))
def test_fast_path_equals_sklearn_on_any_accepted_input(
    trained_model: IrisModel, matrix: np.ndarray
) -> None:
    """Classes are identical and probabilities agree to 1e-12 for every accepted row."""
    assert trained_model.uses_fast_path
    classes, probabilities = _sklearn(trained_model, matrix)
    np.testing.assert_array_equal(trained_model.predict(matrix), classes)
    np.testing.assert_allclose(
        trained_model.predict_proba(matrix), probabilities, rtol=0, atol=1e-12
    )


@settings(max_examples=100, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 8), st.just(4)), elements=finite))
def test_rows_are_scored_or_refused_by_the_scorers_own_bound(
    trained_model: IrisModel, matrix: np.ndarray
) -> None:
    """Rows within the bound the coefficients allow are scored, beyond it refused, never NaN.

    The bound is about 1e299 for Iris: no data set's concern.
    """
    bound = trained_model._scorer.max_abs  # type: ignore[union-attr]
    assert 1e290 < bound < 1e308
    if np.abs(matrix).max() > bound:
        with pytest.raises(InvalidInputError, match="too large for this model"):
            trained_model.predict(matrix)
        return
    assert np.isfinite(trained_model.predict_proba(matrix)).all()


def test_overflowing_scores_are_refused(trained_model: IrisModel) -> None:
    """A model whose scores would overflow refuses the row instead of answering NaN."""
    estimator = copy.deepcopy(trained_model.estimator)
    estimator.coef_ = estimator.coef_ * 1e305
    model = IrisModel(estimator)
    with pytest.raises(InvalidInputError, match=r"row 1, column 0: 900000\.0 is too large"):
        model.predict([[0, 0, 0, 0], [900_000, 0, 0, 0]])
    # Rows that do not overflow are still scored exactly like sklearn does.
    with np.errstate(all="ignore"):
        expected = estimator.predict_proba(np.zeros((1, 4)))
    np.testing.assert_array_equal(model.predict_proba([0, 0, 0, 0]), expected)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(measurements, min_size=4, max_size=4), min_size=1, max_size=16))
def test_fast_path_equals_sklearn_on_python_lists(
    trained_model: IrisModel, rows: list[list[float]]
) -> None:
    """Plain lists (as parsed from JSON) give sklearn's exact answers too."""
    classes, probabilities = _sklearn(trained_model, np.asarray(rows))
    np.testing.assert_array_equal(trained_model.predict(rows), classes)
    np.testing.assert_allclose(trained_model.predict_proba(rows), probabilities, rtol=0, atol=1e-12)
    assert trained_model.predict_labels(rows) == [trained_model.classes[c] for c in classes]


def test_fast_path_is_bit_identical_on_the_data_set(trained_model: IrisModel) -> None:
    """On the 150 real flowers the probabilities are not just close but identical."""
    features, _ = load_dataset()
    classes, probabilities = _sklearn(trained_model, features)
    assert trained_model.predict(features).tolist() == classes.tolist()
    assert np.array_equal(trained_model.predict_proba(features), probabilities)


@pytest.mark.parametrize(
    "estimator",
    [
        DecisionTreeClassifier(random_state=0),
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
    ],
    ids=["tree", "pipeline"],
)
def test_other_estimators_fall_back_to_sklearn(estimator: object) -> None:
    """Estimators the fast path does not reproduce are called through scikit-learn."""
    features, target = load_dataset()
    estimator.fit(features, target)  # type: ignore[attr-defined]
    model = IrisModel(estimator)
    assert not model.uses_fast_path
    assert isinstance(scorer_for(estimator), EstimatorScorer)
    assert model.predict(features).tolist() == estimator.predict(features).tolist()  # type: ignore[attr-defined]
    np.testing.assert_array_equal(model.predict_proba(features), estimator.predict_proba(features))  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("n_features", "n_classes"), [(4, 2), (1, 2), (7, 2), (2, 3), (9, 5), (30, 11)]
)
def test_logistic_regression_of_any_shape_is_scored_exactly(
    n_features: int, n_classes: int
) -> None:
    """Binary (sigmoid) and multinomial (softmax) models, any size: sklearn's exact answers."""
    rng = np.random.default_rng(n_features * 100 + n_classes)
    features = rng.normal(size=(40 * n_classes, n_features))
    target = rng.integers(0, n_classes, size=len(features))
    target[:n_classes] = np.arange(n_classes)  # every class present
    features[:, 0] += target  # something to learn
    estimator = LogisticRegression(max_iter=2000).fit(features, target)
    assert isinstance(scorer_for(estimator), LinearScorer)
    model = IrisModel(estimator)
    assert model.uses_fast_path
    rows = rng.normal(scale=5, size=(64, n_features))
    assert model.predict(rows).tolist() == estimator.predict(rows).tolist()
    assert np.array_equal(model.predict_proba(rows), estimator.predict_proba(rows))


def test_binary_scores_equal_sklearn_on_any_accepted_input() -> None:
    """A binary model agrees with sklearn even at saturated probabilities."""
    features, target = load_dataset()
    binary = LogisticRegression(max_iter=1000).fit(features, target == 2)
    model = IrisModel(binary, classes=("other", "virginica"))
    assert model.uses_fast_path
    rows = np.random.default_rng(1).uniform(-MAX_ABS_FEATURE, MAX_ABS_FEATURE, size=(200, 4))
    rows[:100] /= 1e5
    assert model.predict(rows).tolist() == binary.predict(rows).tolist()
    assert np.array_equal(model.predict_proba(rows), binary.predict_proba(rows))
    assert model.classify(rows)[0].tolist() == binary.predict(rows).astype(int).tolist()


def test_one_vs_rest_models_fall_back() -> None:
    """A model that might be one-vs-rest (older scikit-learn) is left to sklearn."""
    features, target = load_dataset()
    estimator = LogisticRegression(max_iter=1000).fit(features, target)
    estimator.multi_class = "ovr"  # as scikit-learn < 1.8 could fit it
    assert isinstance(scorer_for(estimator), EstimatorScorer)


def test_string_labels_map_to_indices() -> None:
    """String labels: predict() answers them, classify() their indices into classes."""
    features, target = load_dataset()
    names = np.array(["setosa", "versicolor", "virginica"])[target]
    tree = DecisionTreeClassifier(random_state=0).fit(features, names)
    model = IrisModel(tree)
    assert model.classes == ("setosa", "versicolor", "virginica")
    assert model.classify(features)[0].tolist() == target.tolist()
    assert model.predict(features).tolist() == names.tolist()


def test_linear_scorer_is_chosen_for_plain_logistic_regression(trained_model: IrisModel) -> None:
    """The trained model takes the fast path."""
    assert isinstance(scorer_for(trained_model.estimator), LinearScorer)


def test_scores_stay_exact_as_batches_grow_and_shrink(trained_model: IrisModel) -> None:
    """The kept row-repeated intercept gives sklearn's bits for every batch size."""
    estimator = trained_model.estimator
    scorer = LinearScorer(estimator)
    rng = np.random.default_rng(7)
    for n_rows in (1, 5, 1000, 3, 2000, 20_000, 7):  # 20,000 rows x 3: past the kept copy
        matrix = rng.uniform(-10, 10, size=(n_rows, 4))
        assert np.array_equal(scorer.decision_function(matrix), estimator.decision_function(matrix))
        assert np.array_equal(scorer.predict_proba(matrix), estimator.predict_proba(matrix))
