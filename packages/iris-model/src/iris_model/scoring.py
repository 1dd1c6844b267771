"""Scoring validated rows: a low-overhead scorer for logistic regressions, sklearn for the rest.

scikit-learn's ``predict`` spends most of a single-row call validating its input
(``validate_data``), not computing. Our rows are validated already, so for a
``LogisticRegression`` we repeat sklearn's own arithmetic operation for operation: the
results are bit-identical, as the property tests check. Multinomial models (any number of
classes and features): ``X @ coef_.T + intercept_``, argmax, then sklearn's in-place softmax.
Binary models (one row of coefficients): the score of the positive class, then sklearn's
``expit``, as ``LogisticRegression.predict_proba`` does. Anything else is left to the
estimator itself.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from scipy.special import expit
from sklearn.linear_model import LogisticRegression

from iris_model.errors import InvalidInputError

Matrix = npt.NDArray[np.float64]
#: What a scorer that hands rows to scikit-learn accepts: its trees and histograms cast X to
#: float32, and a finite float64 beyond this becomes inf there (a ValueError, not an answer).
FLOAT32_MAX = float(np.finfo(np.float32).max)
# Scores below this can be subtracted from one another without overflowing a float64.
_SAFE_SCORE = 1e300
_FLOAT_MAX = float(np.finfo(np.float64).max)
Indices = npt.NDArray[np.int64]
# Scores of at most this many values get the intercept from a kept row-repeated copy (512 KiB).
_MAX_TILED_VALUES = 65_536


class Scorer(Protocol):
    """Turns validated rows into class indices and class probabilities.

    The rows are a float matrix, or for an estimator fitted on a DataFrame a DataFrame with
    its training columns. ``max_abs`` is the largest |number| it scores without overflowing.
    """

    max_abs: float

    def predict(self, matrix: Matrix) -> Indices:
        """Return the index (into ``classes_``) of the most likely class of each row."""
        ...

    def predict_proba(self, matrix: Matrix) -> Matrix:
        """Return the probability of every class for each row."""
        ...


class LinearScorer:
    """Scores a ``LogisticRegression`` without sklearn's per-call validation."""

    def __init__(self, estimator: LogisticRegression, *, guard_overflow: bool = False) -> None:
        """Keep the estimator's weights; ``guard_overflow`` checks every score (any input)."""
        # The same transposed view sklearn multiplies by: same memory layout, same BLAS call,
        # same rounding.
        self._coef_t: Matrix = estimator.coef_.T
        self._intercept: Matrix = estimator.intercept_
        # The intercept repeated once per row, for the largest batch scored so far: adding it
        # row by row is the same float additions as broadcasting it, without NumPy's
        # broadcast loop over a few columns at a time (half the cost of a batch's scores).
        self._intercept_rows: Matrix = self._intercept.reshape(1, -1)
        # Two classes: one row of coefficients scores the second class (a sigmoid, not softmax).
        self._binary = estimator.coef_.shape[0] == 1
        # The validation bounds every |value| by max_abs, chosen so that no score can reach
        # _SAFE_SCORE: the bound follows from the coefficients (what this model needs), not
        # from the data, and the per-call overflow guard (3.9% of a server worker's CPU on
        # single rows) is skipped. Only a model whose intercept alone is that large (or
        # whose coefficients are not finite) keeps the guard, with no bound on the values.
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            spare = _SAFE_SCORE - np.abs(estimator.intercept_).max()
            weight = np.abs(estimator.coef_).sum(axis=1).max()
            bound = float(spare / weight) if weight > 0 else _FLOAT_MAX
        self._may_overflow = guard_overflow or not (np.isfinite(bound) and bound > 0 and spare > 0)
        self.max_abs = _FLOAT_MAX if self._may_overflow else min(bound, _FLOAT_MAX)

    def decision_function(self, matrix: Matrix) -> Matrix:
        """Return the per-class linear scores, exactly as sklearn computes them.

        Raises:
            InvalidInputError: the model's coefficients are so large that a row's scores
                overflow. sklearn would answer NaN probabilities and an arbitrary class; no
                client can use that, so the row is refused instead.
        """
        if not self._may_overflow:
            return self._plus_intercept(matrix @ self._coef_t)
        with np.errstate(over="ignore", invalid="ignore"):
            scores = self._plus_intercept(matrix @ self._coef_t)
        finite = np.isfinite(scores)
        if not finite.all():
            row = int(np.argwhere(~finite)[0][0])
            raise InvalidInputError(f"row {row}: values too large to score (the scores overflow)")
        return scores

    def _plus_intercept(self, products: Matrix) -> Matrix:
        """``products + intercept_``, in place (bit for bit what sklearn's broadcast adds)."""
        n_rows = len(products)
        if products.size > _MAX_TILED_VALUES:  # a huge batch (evaluation): keep no copy
            products += self._intercept
            return products
        rows = self._intercept_rows
        if len(rows) < n_rows:
            rows = self._intercept_rows = np.tile(self._intercept, (n_rows, 1))
        products += rows[:n_rows]
        return products

    def predict(self, matrix: Matrix) -> Indices:
        """Return the argmax of the linear scores (binary: whether the score is positive)."""
        scores = self.decision_function(matrix)
        if self._binary:
            return (scores[:, 0] > 0).astype(np.int64)
        indices: Indices = scores.argmax(axis=1).astype(np.int64)
        return indices

    def predict_proba(self, matrix: Matrix) -> Matrix:
        """Return the softmax of the linear scores, step for step as ``sklearn.utils.extmath``.

        Binary models: sklearn's ``expit`` of the score, beside one minus it.
        """
        scores = self.decision_function(matrix)
        if self._binary:
            positive = expit(scores[:, 0])
            return np.stack([1 - positive, positive], axis=1)
        if self._may_overflow:
            with np.errstate(over="ignore", under="ignore"):  # finite scores 1e308 apart
                scores -= scores.max(axis=1).reshape(-1, 1)
        else:
            scores -= scores.max(axis=1).reshape(-1, 1)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=1).reshape(-1, 1)
        return scores


class EstimatorScorer:
    """Delegates to any fitted scikit-learn classifier (the general, slower path)."""

    max_abs = FLOAT32_MAX

    def __init__(self, estimator: Any) -> None:
        self._estimator = estimator
        self._classes = np.asarray(estimator.classes_)

    def predict(self, matrix: Any) -> Indices:
        """Return the indices of the estimator's predicted labels in ``classes_``."""
        labels = self._estimator.predict(matrix)
        indices: Indices = np.searchsorted(self._classes, labels).astype(np.int64)
        return indices

    def predict_proba(self, matrix: Any) -> Matrix:
        """Return the estimator's own ``predict_proba``."""
        return np.asarray(self._estimator.predict_proba(matrix), dtype=np.float64)


def scorer_for(estimator: Any, *, numbers_only: bool = True) -> Scorer:
    """Pick the fast scorer when the estimator is one it reproduces exactly, else sklearn's.

    A plain ``LogisticRegression`` of any shape qualifies: binary (sigmoid) or multinomial
    (softmax), any number of features and classes, when its input is numbers only (no
    nullable or text columns: ``numbers_only``). One-vs-rest models (scikit-learn before 1.8
    could fit them), subclasses and pipelines may compute differently: sklearn scores them.
    """
    coef = getattr(estimator, "coef_", None)
    plain = type(estimator) is LogisticRegression and numbers_only
    if not plain or coef is None or coef.ndim != 2:
        return EstimatorScorer(estimator)
    n_classes = len(estimator.classes_)
    multi_class = getattr(estimator, "multi_class", "deprecated")
    one_vs_rest = multi_class == "ovr" or (
        multi_class == "auto" and getattr(estimator, "solver", "") == "liblinear"
    )
    binary = n_classes == 2 and coef.shape[0] == 1
    multinomial = n_classes > 2 and coef.shape[0] == n_classes and not one_vs_rest
    if binary or multinomial:
        return LinearScorer(estimator)
    return EstimatorScorer(estimator)
