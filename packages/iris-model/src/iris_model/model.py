"""The model object users predict with: an estimator plus its schema and metadata."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator, ClassifierMixin

from iris_model.dataset import CLASS_NAMES, FEATURE_NAMES
from iris_model.errors import InvalidInputError, IrisModelError, ModelLoadError
from iris_model.evaluation import Evaluation
from iris_model.scoring import Indices, LinearScorer, Matrix, Scorer, scorer_for
from iris_model.validation import Table, to_matrix, to_table

DEFAULT_MAX_ROWS: Final = 10_000
# Golden pairs are re-run on a different machine (another BLAS) too: allow last-bit noise.
_GOLDEN_TOLERANCE: Final = 1e-9


class IrisModel(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """A fitted classifier with strict input validation and a schema.

    Rows are numbers in the order of :attr:`feature_names` (one row, a list of rows or a
    NumPy array), or a pandas DataFrame or Series whose columns are matched by name.
    :meth:`predict` answers labels as the estimator learned them (for the default Iris model,
    class indices); :meth:`predict_labels` answers the names in :attr:`classes`.

    It is a scikit-learn classifier too: ``cross_val_score(model, X, y)`` and
    ``permutation_importance(model, X, y)`` work on it, with DataFrames matched by name.

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
        feature_names: Sequence[str] | None = None,
        classes: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        max_rows: int = DEFAULT_MAX_ROWS,
        version: str | None = None,
    ) -> None:
        """Wrap a scikit-learn classifier (fitted, or to be fitted by :meth:`fit`).

        Args:
            estimator: A classifier with ``predict`` and ``predict_proba``.
            feature_names: Names of the input columns, in order. Default: the estimator's
                ``feature_names_in_``, else the Iris names for a 4-feature estimator, else
                ``x0``, ``x1``, ...
            classes: A label for each of the estimator's ``classes_``, in order. Default:
                the Iris names for an estimator with classes 0, 1, 2, else ``str()`` of each.
            metadata: The manifest describing how the model was made (see :func:`save`).
            max_rows: The largest batch :meth:`predict` accepts.
            version: The model's own version (recorded by :func:`save` as
                ``model_version``), or None.
        """
        self.estimator = estimator
        # Empty until known (an unfitted estimator): scikit-learn's clone() passes them back.
        self.feature_names: tuple[str, ...] = _names(feature_names)
        self.classes: tuple[str, ...] = _names(classes)
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.max_rows = max_rows
        self.version = version
        #: The directory digest (``sha256:<hex>``) when loaded by :func:`load`, else None.
        self.digest: str | None = None
        self._scorer: Scorer | None = None
        if _is_fitted(estimator):
            self._bind()

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """scikit-learn's parameters: everything but the metadata, which describes one fit."""
        params: dict[str, Any] = super().get_params(deep=deep)
        params.pop("metadata", None)
        return params

    def _bind(self) -> None:
        """Derive the schema from the fitted estimator and pick its scorer."""
        estimator = self.estimator
        if not (hasattr(estimator, "predict") and hasattr(estimator, "predict_proba")):
            raise IrisModelError(
                f"{type(estimator).__name__} is not a classifier with predict_proba"
            )
        labels = np.asarray(estimator.classes_)
        n_in = getattr(estimator, "n_features_in_", None)
        if not self.feature_names:
            names = getattr(estimator, "feature_names_in_", None)
            if names is not None:
                self.feature_names = tuple(str(name) for name in names)
            elif n_in is None or n_in == len(FEATURE_NAMES):
                self.feature_names = FEATURE_NAMES
            else:
                self.feature_names = tuple(f"x{k}" for k in range(n_in))
        if not self.classes:
            iris_like = labels.tolist() == list(range(len(CLASS_NAMES)))
            self.classes = CLASS_NAMES if iris_like else tuple(str(c) for c in labels.tolist())
        if n_in is not None and n_in != len(self.feature_names):
            raise IrisModelError(
                f"the estimator takes {n_in} features but {len(self.feature_names)} feature"
                " names were given"
            )
        if len(self.classes) != len(labels):
            raise IrisModelError(
                f"the estimator has {len(labels)} classes but {len(self.classes)} class"
                " labels were given"
            )
        self._labels = labels
        # The default Iris model's labels are its indices: predict() then skips a lookup.
        self._labels_are_indices = labels.dtype.kind in "iu" and np.array_equal(
            labels, np.arange(len(labels))
        )
        self._scorer = scorer_for(estimator)

    # ------------------------------------------------------------------ schema
    @property
    def n_features(self) -> int:
        """Number of numbers each row must hold."""
        return len(self._schema_names())

    @property
    def classes_(self) -> npt.NDArray[Any]:
        """The labels :meth:`predict` answers, as the estimator learned them (scikit-learn)."""
        self._fitted()
        return self._labels

    @property
    def feature_names_in_(self) -> npt.NDArray[Any]:
        """The feature names as an array, scikit-learn's name for them."""
        return np.asarray(self._schema_names(), dtype=object)

    @property
    def n_features_in_(self) -> int:
        """scikit-learn's name for :attr:`n_features`."""
        return self.n_features

    @property
    def sha256(self) -> str | None:
        """Hex sha256 of the saved ``model.joblib``, or None before the model is saved."""
        artifact = self.metadata.get("artifact") or {}
        sha = artifact.get("sha256")
        return str(sha) if sha else None

    @property
    def evaluation(self) -> Evaluation | None:
        """The evaluation recorded when the model was trained (or saved), if any."""
        metrics = self.metadata.get("metrics")
        return Evaluation.from_dict(metrics) if isinstance(metrics, dict) else None

    @property
    def uses_fast_path(self) -> bool:
        """Whether predictions bypass sklearn's per-call validation (see ``scoring``)."""
        return isinstance(self._scorer, LinearScorer)

    # -------------------------------------------------------------- prediction
    def validate(self, rows: Any) -> Matrix:
        """Return ``rows`` as a float64 matrix of shape (n, n_features), or raise.

        Raises:
            InvalidInputError: ``rows`` is malformed (the message names row and column), or
                a DataFrame lacks a feature column or has an unknown one.
            BatchTooLargeError: more than :attr:`max_rows` rows.
        """
        return self._table(rows).matrix

    def _table(self, rows: Any, max_rows: int | None = DEFAULT_MAX_ROWS) -> Table:
        """Validate rows; ``max_rows=None`` lifts the batch limit (training, evaluation)."""
        limit = sys.maxsize if max_rows is None else self.max_rows
        names = self._schema_names()
        if type(rows) is list or type(rows) is np.ndarray:  # the server's hot path
            return Table(to_matrix(rows, n_features=len(names), max_rows=limit), None)
        return to_table(rows, feature_names=names, max_rows=limit)

    def predict(self, rows: Any) -> npt.NDArray[Any]:
        """Return the predicted label of each row, as the estimator learned labels.

        For the default Iris model these are class indices (0, 1, 2) into :attr:`classes`.

        Raises:
            InvalidInputError: ``rows`` is malformed (the message names row and column).
            BatchTooLargeError: more than :attr:`max_rows` rows.
        """
        indices = self._fitted().predict(self._table(rows).matrix)
        return indices if self._labels_are_indices else self._labels[indices]

    def predict_proba(self, rows: Any, *, as_frame: bool = False) -> Any:
        """Return the probability of each class (columns in the order of :attr:`classes`).

        Args:
            rows: As :meth:`predict`.
            as_frame: Return a pandas DataFrame with one column per class label and the
                input's index (a DataFrame's own, else 0..n-1). Needs pandas.
        """
        table = self._table(rows)
        probabilities = self._fitted().predict_proba(table.matrix)
        if not as_frame:
            return probabilities
        pandas = _pandas()
        return pandas.DataFrame(probabilities, columns=list(self._class_names()), index=table.index)

    def classify(self, rows: Any, *, probabilities: bool = False) -> tuple[Indices, Matrix | None]:
        """Validate ``rows`` once and return class indices, plus probabilities if asked.

        For callers (such as a server) that may need both answers: ``predict`` and
        ``predict_proba`` would each validate the rows again. Indices point into
        :attr:`classes`.
        """
        scorer = self._fitted()
        matrix = self._table(rows).matrix
        proba = scorer.predict_proba(matrix) if probabilities else None
        return scorer.predict(matrix), proba

    def _classify_all(self, rows: Any) -> tuple[Indices, Matrix]:
        """classify() with probabilities and without the batch limit (evaluation, golden)."""
        scorer = self._fitted()
        matrix = self._table(rows, max_rows=None).matrix
        return scorer.predict(matrix), scorer.predict_proba(matrix)

    def predict_labels(self, rows: Any, *, as_frame: bool = False) -> Any:
        """Return the predicted class label (from :attr:`classes`) of each row.

        Args:
            rows: As :meth:`predict`.
            as_frame: Return a pandas Series named ``label`` with the input's index.
        """
        table = self._table(rows)
        names = self._class_names()
        labels = [names[i] for i in self._fitted().predict(table.matrix).tolist()]
        if not as_frame:
            return labels
        return _pandas().Series(labels, index=table.index, name="label")

    def label_indices(self, y: Any) -> Indices:
        """Map labels as the estimator learned them (``classes_``) to indices into classes.

        Raises:
            InvalidInputError: a label is not one of the model's classes.
        """
        self._fitted()
        position = {label: k for k, label in enumerate(self._labels.tolist())}
        values = np.asarray(y).ravel().tolist()
        try:
            return np.fromiter((position[v] for v in values), np.int64, len(values))
        except (KeyError, TypeError):
            unknown = next(v for v in values if not _hashable_in(v, position))
            raise InvalidInputError(
                f"label {unknown!r} is not one of the model's classes {self._labels.tolist()}"
            ) from None

    # --------------------------------------------------------- scikit-learn API
    def fit(self, X: Any, y: Any) -> IrisModel:  # noqa: N803 - scikit-learn's argument names
        """Fit the wrapped estimator on ``X`` and ``y`` (what ``cross_val_score`` calls).

        A DataFrame is matched to :attr:`feature_names` when they are set, and otherwise
        gives them. The metadata of a previous fit (metrics, golden pairs) is dropped.
        """
        if not self.feature_names:
            columns = getattr(X, "columns", None)
            if columns is not None:
                self.feature_names = tuple(str(c) for c in columns)
            else:
                self.feature_names = tuple(f"x{k}" for k in range(np.shape(X)[-1]))
        matrix = self._table(X, max_rows=None).matrix
        self.estimator.fit(matrix, np.asarray(y))
        if self.classes and len(self.classes) != len(self.estimator.classes_):
            self.classes = ()
        self.metadata = {}
        self._bind()
        return self

    def __sklearn_is_fitted__(self) -> bool:
        """Whether the wrapped estimator is fitted (scikit-learn's ``check_is_fitted``)."""
        return self._scorer is not None

    # ----------------------------------------------------------------- checks
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
        scorer = self._fitted()
        # The batch limit is for callers; the self-test must run whatever it is set to.
        inputs = to_matrix(
            [pair["input"] for pair in golden], n_features=self.n_features, max_rows=len(golden)
        )
        predicted = scorer.predict(inputs).tolist()
        probabilities = scorer.predict_proba(inputs)
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

    def _fitted(self) -> Scorer:
        if self._scorer is None:
            raise IrisModelError(
                f"the model's {type(self.estimator).__name__} is not fitted yet: call fit()"
            )
        return self._scorer

    def _schema_names(self) -> tuple[str, ...]:
        if not self.feature_names:
            raise IrisModelError("the model has no feature names before it is fitted")
        return self.feature_names

    def _class_names(self) -> tuple[str, ...]:
        self._fitted()
        return self.classes

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:  # noqa: N803 - BaseEstimator's signature
        parts = [type(self.estimator).__name__]
        if self._scorer is not None:
            parts += [f"classes={self.classes!r}", f"n_features={self.n_features}"]
        else:
            parts.append("not fitted")
        accuracy = (self.metadata.get("metrics") or {}).get("accuracy")
        if accuracy is not None:
            parts.append(f"accuracy={accuracy:.3f}")
        if self.version is not None:
            parts.append(f"version={self.version!r}")
        if self.sha256:
            parts.append(f"sha256={self.sha256[:12]}…")
        return f"IrisModel({', '.join(parts)})"


def golden_pairs(model: IrisModel, inputs: npt.ArrayLike) -> list[dict[str, Any]]:
    """Record what ``model`` answers for ``inputs``, for :meth:`IrisModel.self_test`."""
    rows = np.asarray(inputs, dtype=np.float64)
    predictions, probabilities = model._classify_all(rows)
    return [
        {"input": row, "prediction": pred, "label": model.classes[pred], "probabilities": proba}
        for row, pred, proba in zip(
            rows.tolist(), predictions.tolist(), probabilities.tolist(), strict=True
        )
    ]


def _names(names: Sequence[str] | None) -> tuple[str, ...]:
    """Names as a tuple of str; a NumPy array works too (no truth test on it).

    A tuple of str comes back as the same object: scikit-learn's clone() checks that the
    constructor keeps its parameters as given.
    """
    if names is None:
        return ()
    as_tuple = tuple(names)
    return as_tuple if all(type(n) is str for n in as_tuple) else tuple(map(str, as_tuple))


def _is_fitted(estimator: Any) -> bool:
    try:
        return getattr(estimator, "classes_", None) is not None
    except Exception:
        return False


def _hashable_in(value: Any, mapping: Mapping[Any, int]) -> bool:
    try:
        return value in mapping
    except TypeError:
        return False


def _pandas() -> Any:
    try:
        import pandas  # type: ignore[import-untyped]  # noqa: PLC0415 - optional dependency
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("as_frame=True needs pandas: pip install pandas") from exc
    return pandas
