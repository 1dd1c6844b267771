"""The model object users predict with: an estimator plus its schema and metadata."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from iris_model.dataset import CLASS_NAMES, FEATURE_NAMES
from iris_model.errors import ModelLoadError
from iris_model.fastpath import Indices, LinearScorer, Matrix, scorer_for
from iris_model.validation import to_matrix

DEFAULT_MAX_ROWS: Final = 10_000
# Golden pairs are re-run on a different machine (another BLAS) too: allow last-bit noise.
_GOLDEN_TOLERANCE: Final = 1e-9


class IrisModel:
    """A fitted Iris classifier with strict input validation.

    Rows are lists of 4 numbers in the order of :attr:`feature_names` (one row, a list of
    rows, or a NumPy array). Predictions are indices into :attr:`classes`.

    Example:
        >>> model, evaluation = iris_model.train()
        >>> model.predict([5.1, 3.5, 1.4, 0.2])
        array([0])
        >>> model.classes[0]
        'setosa'
    """

    def __init__(
        self,
        estimator: Any,
        *,
        feature_names: Sequence[str] = FEATURE_NAMES,
        classes: Sequence[str] = CLASS_NAMES,
        metadata: Mapping[str, Any] | None = None,
        max_rows: int = DEFAULT_MAX_ROWS,
    ) -> None:
        """Wrap a fitted scikit-learn classifier.

        Args:
            estimator: A fitted classifier with ``predict`` and ``predict_proba``.
            feature_names: Names of the input columns, in order.
            classes: Human-readable label of each class index.
            metadata: The manifest describing how the model was made (see :func:`save`).
            max_rows: The largest batch :meth:`predict` accepts.
        """
        self.estimator = estimator
        self.feature_names: tuple[str, ...] = tuple(feature_names)
        self.classes: tuple[str, ...] = tuple(classes)
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.max_rows = max_rows
        #: The directory digest (``sha256:<hex>``) when loaded by :func:`load`, else None.
        self.digest: str | None = None
        self._scorer = scorer_for(estimator)

    @property
    def n_features(self) -> int:
        """Number of numbers each row must hold."""
        return len(self.feature_names)

    @property
    def sha256(self) -> str | None:
        """Hex sha256 of the saved ``model.joblib``, or None before the model is saved."""
        artifact = self.metadata.get("artifact") or {}
        sha = artifact.get("sha256")
        return str(sha) if sha else None

    @property
    def uses_fast_path(self) -> bool:
        """Whether predictions bypass sklearn's per-call validation (see ``fastpath``)."""
        return isinstance(self._scorer, LinearScorer)

    def validate(self, rows: Any) -> Matrix:
        """Return ``rows`` as a float64 matrix of shape (n, 4), or raise ``InvalidInputError``."""
        return to_matrix(rows, n_features=self.n_features, max_rows=self.max_rows)

    def predict(self, rows: Any) -> Indices:
        """Return the predicted class index of each row.

        Raises:
            InvalidInputError: ``rows`` is malformed (the message names row and column).
            BatchTooLargeError: more than :attr:`max_rows` rows.
        """
        return self._scorer.predict(self.validate(rows))

    def predict_proba(self, rows: Any) -> Matrix:
        """Return the probability of each class (columns in the order of :attr:`classes`)."""
        return self._scorer.predict_proba(self.validate(rows))

    def classify(self, rows: Any, *, probabilities: bool = False) -> tuple[Indices, Matrix | None]:
        """Validate ``rows`` once and return class indices, plus probabilities if asked.

        For callers (such as a server) that may need both answers: ``predict`` and
        ``predict_proba`` would each validate the rows again.
        """
        matrix = self.validate(rows)
        proba = self._scorer.predict_proba(matrix) if probabilities else None
        return self._scorer.predict(matrix), proba

    def predict_labels(self, rows: Any) -> list[str]:
        """Return the predicted class label of each row."""
        return [self.classes[i] for i in self.predict(rows).tolist()]

    def self_test(self) -> None:
        """Re-run the golden input/output pairs recorded in the metadata.

        Each pair records the class label too, so a manifest whose ``classes`` were edited
        (say reversed, answering "virginica" for a setosa) fails here.

        Raises:
            ModelLoadError: a recorded pair no longer reproduces, or none is recorded.
        """
        golden = self.metadata.get("golden") or []
        if not golden:
            raise ModelLoadError("the model's metadata records no golden input/output pairs")
        # The batch limit is for callers; the self-test must run whatever it is set to.
        inputs = to_matrix(
            [pair["input"] for pair in golden], n_features=self.n_features, max_rows=len(golden)
        )
        predicted = self._scorer.predict(inputs).tolist()
        probabilities = self._scorer.predict_proba(inputs)
        for k, pair in enumerate(golden):
            label = self.classes[predicted[k]] if 0 <= predicted[k] < len(self.classes) else None
            if label is None or label != pair.get("label"):
                raise ModelLoadError(
                    f"golden pair {k} no longer reproduces: input {pair['input']} is class"
                    f" {predicted[k]}, labelled {label!r} by the manifest, but was saved as"
                    f" {pair.get('label')!r}"
                )
            if predicted[k] != pair["prediction"] or not np.allclose(
                probabilities[k], pair["probabilities"], rtol=0, atol=_GOLDEN_TOLERANCE
            ):
                raise ModelLoadError(
                    f"golden pair {k} no longer reproduces: input {pair['input']} gave class"
                    f" {predicted[k]} with probabilities {probabilities[k].tolist()}, expected"
                    f" {pair['prediction']} with {pair['probabilities']}"
                )

    def __repr__(self) -> str:
        parts = [
            type(self.estimator).__name__,
            f"classes={self.classes!r}",
            f"n_features={self.n_features}",
        ]
        accuracy = (self.metadata.get("metrics") or {}).get("accuracy")
        if accuracy is not None:
            parts.append(f"accuracy={accuracy:.3f}")
        if self.sha256:
            parts.append(f"sha256={self.sha256[:12]}…")
        return f"IrisModel({', '.join(parts)})"


def golden_pairs(model: IrisModel, inputs: npt.ArrayLike) -> list[dict[str, Any]]:
    """Record what ``model`` answers for ``inputs``, for :meth:`IrisModel.self_test`."""
    rows = np.asarray(inputs, dtype=np.float64)
    predictions = model.predict(rows).tolist()
    probabilities = model.predict_proba(rows).tolist()
    return [
        {"input": row, "prediction": pred, "label": model.classes[pred], "probabilities": proba}
        for row, pred, proba in zip(rows.tolist(), predictions, probabilities, strict=True)
    ]
