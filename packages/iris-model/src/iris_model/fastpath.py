"""A low-overhead scorer for fitted multinomial logistic regressions.

scikit-learn's ``predict`` spends most of a single-row call validating its input
(``validate_data``), not computing. Our rows are validated already, so for a
``LogisticRegression`` we repeat sklearn's own arithmetic (``X @ coef_.T + intercept_``,
argmax, then its in-place softmax) operation for operation: the results are bit-identical,
as the property tests check. Anything else falls back to the estimator itself.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression

from iris_model.errors import InvalidInputError
from iris_model.validation import MAX_ABS_FEATURE

Matrix = npt.NDArray[np.float64]
# Scores below this can be subtracted from one another without overflowing a float64.
_SAFE_SCORE = 1e300
Indices = npt.NDArray[np.int64]


class Scorer(Protocol):
    """Turns a validated float matrix into class indices and class probabilities."""

    def predict(self, matrix: Matrix) -> Indices:
        """Return the index (into ``classes_``) of the most likely class of each row."""
        ...

    def predict_proba(self, matrix: Matrix) -> Matrix:
        """Return the probability of every class for each row."""
        ...


class LinearScorer:
    """Scores a multiclass ``LogisticRegression`` without sklearn's per-call validation."""

    def __init__(self, estimator: LogisticRegression) -> None:
        # The same transposed view sklearn multiplies by: same memory layout, same BLAS call,
        # same rounding.
        self._coef_t: Matrix = estimator.coef_.T
        self._intercept: Matrix = estimator.intercept_
        # Validated rows are within ±MAX_ABS_FEATURE, so |score| is at most this bound. For
        # any sane model it is tiny and the per-call overflow guard (3.9% of a server
        # worker's CPU on single rows) can be skipped.
        with np.errstate(over="ignore"):  # a huge bound is the answer, not an error
            largest_score = np.abs(estimator.coef_).sum(axis=1) * MAX_ABS_FEATURE + np.abs(
                estimator.intercept_
            )
        self._may_overflow = not bool((largest_score < _SAFE_SCORE).all())

    def decision_function(self, matrix: Matrix) -> Matrix:
        """Return the per-class linear scores, exactly as sklearn computes them.

        Raises:
            InvalidInputError: the model's coefficients are so large that a row's scores
                overflow. sklearn would answer NaN probabilities and an arbitrary class; no
                client can use that, so the row is refused instead.
        """
        if not self._may_overflow:
            scores: Matrix = matrix @ self._coef_t + self._intercept
            return scores
        with np.errstate(over="ignore", invalid="ignore"):
            scores = matrix @ self._coef_t + self._intercept
        finite = np.isfinite(scores)
        if not finite.all():
            row = int(np.argwhere(~finite)[0][0])
            raise InvalidInputError(f"row {row}: values too large to score (the scores overflow)")
        return scores

    def predict(self, matrix: Matrix) -> Indices:
        """Return the argmax of the linear scores."""
        indices: Indices = self.decision_function(matrix).argmax(axis=1).astype(np.int64)
        return indices

    def predict_proba(self, matrix: Matrix) -> Matrix:
        """Return the softmax of the linear scores, step for step as ``sklearn.utils.extmath``."""
        scores = self.decision_function(matrix)
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

    def __init__(self, estimator: Any) -> None:
        self._estimator = estimator
        self._classes = np.asarray(estimator.classes_)

    def predict(self, matrix: Matrix) -> Indices:
        """Return the indices of the estimator's predicted labels in ``classes_``."""
        labels = self._estimator.predict(matrix)
        indices: Indices = np.searchsorted(self._classes, labels).astype(np.int64)
        return indices

    def predict_proba(self, matrix: Matrix) -> Matrix:
        """Return the estimator's own ``predict_proba``."""
        return np.asarray(self._estimator.predict_proba(matrix), dtype=np.float64)


def scorer_for(estimator: Any) -> Scorer:
    """Pick the fast scorer when the estimator is one it reproduces exactly, else sklearn's.

    Only a plain multiclass ``LogisticRegression`` qualifies: binary models use a sigmoid,
    and subclasses or pipelines may change the arithmetic.
    """
    if (
        type(estimator) is LogisticRegression
        and getattr(estimator, "coef_", None) is not None
        and estimator.coef_.ndim == 2
        and len(estimator.classes_) > 2
        and estimator.coef_.shape[0] == len(estimator.classes_)
    ):
        return LinearScorer(estimator)
    return EstimatorScorer(estimator)
