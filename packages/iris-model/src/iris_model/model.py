"""The model object users predict with: an estimator plus its schema and metadata."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator, ClassifierMixin

from iris_model.compiled import CompiledScorer, compile_estimator
from iris_model.dataset import CLASS_NAMES, FEATURE_NAMES
from iris_model.errors import InvalidInputError, IrisModelError, ModelLoadError
from iris_model.evaluation import Evaluation
from iris_model.frames import to_columns, to_frame, to_numbers
from iris_model.schema import Schema, SchemaError
from iris_model.scoring import Indices, LinearScorer, Matrix, Scorer, scorer_for
from iris_model.validation import NumberSpec, Table, is_missing, to_matrix, to_table

DEFAULT_MAX_ROWS: Final = 10_000
# Golden pairs are re-run on a different machine (another BLAS) too: allow last-bit noise.
_GOLDEN_TOLERANCE: Final = 1e-9


class IrisModel(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """A fitted classifier with strict input validation and a typed schema.

    :attr:`schema` names each input column with its type and whether it may be missing.
    Rows are a pandas DataFrame or Series (columns matched by name, in any order), a dict of
    columns, a list of row dicts, or values in the order of :attr:`feature_names` (one row,
    a list of rows or a NumPy array). An estimator fitted on a DataFrame gets a DataFrame
    with its training columns and dtypes; an all-numeric one a float matrix.
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
        schema: Schema | None = None,
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
            schema: The input columns' types (:meth:`Schema.infer` of the training
                DataFrame). Default: every feature a number that may not be missing.
        """
        self.estimator = estimator
        self.schema = schema
        # Empty until known (an unfitted estimator): scikit-learn's clone() passes them back.
        self.feature_names: tuple[str, ...] = _names(feature_names)
        self.classes: tuple[str, ...] = _names(classes)
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.max_rows = max_rows
        self.version = version
        #: The directory digest (``sha256:<hex>``) when loaded by :func:`load`, else None.
        self.digest: str | None = None
        self._scorer: Scorer | None = None
        self._compiled: CompiledScorer | None = None
        #: Why the pipeline is not compiled (``"compiled"`` when it is; see ``compiled``).
        self.compiled_reason: str | None = None
        self._matrix_input = True
        self._spec = NumberSpec()
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
        if not self.feature_names and self.schema is not None:
            self.feature_names = self.schema.names
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
        if self.schema is None:
            self.schema = Schema.numeric(self.feature_names)
        elif self.schema.names != self.feature_names:
            raise IrisModelError(
                f"the schema's columns {list(self.schema.names)} differ from the feature names"
                f" {list(self.feature_names)}"
            )
        self._labels = labels
        # The default Iris model's labels are its indices: predict() then skips a lookup.
        self._labels_are_indices = labels.dtype.kind in "iu" and np.array_equal(
            labels, np.arange(len(labels))
        )
        schema = self.schema
        numbers_only = schema.all_numeric and not any(schema.nullable)
        self._scorer = scorer = scorer_for(estimator, numbers_only=numbers_only)
        # A float matrix for the fast scorer, and for numeric estimators fitted on one; a
        # DataFrame for everything fitted on a DataFrame (named columns, dtypes).
        self._matrix_input = schema.all_numeric and (
            isinstance(scorer, LinearScorer)
            or getattr(estimator, "feature_names_in_", None) is None
        )
        scorer = self._bind_compiled(scorer)
        integer = np.array([c.type == "integer" for c in schema.columns])
        self._spec = NumberSpec(
            scorer.max_abs,
            np.array(schema.nullable) if any(schema.nullable) else None,
            integer if integer.any() else None,
        )

    def _bind_compiled(self, scorer: Scorer) -> Scorer:
        """The compiled pipeline's scorer when it compiles and proves equal, else ``scorer``."""
        self._compiled, self.compiled_reason = None, None
        if self._matrix_input:  # numbers: the linear scorer or the estimator on a matrix
            return scorer
        assert self.schema is not None  # noqa: S101 - set by _bind
        golden = [pair["input"] for pair in self.metadata.get("golden") or ()]
        self._compiled, self.compiled_reason = compile_estimator(
            self.estimator, self.schema, golden
        )
        if self._compiled is None:
            return scorer
        self._scorer = self._compiled
        return self._compiled

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
    def max_abs_number(self) -> float:
        """The largest |number| a row may hold: what the scorer takes without overflowing.

        Not a bound on data (prices, counts and timestamps are all far inside it): for a
        logistic regression it follows from the coefficients (about 1e299 for Iris), for
        other estimators it is float32's range, which their trees cast rows to.
        """
        self._fitted()
        return self._spec.max_abs

    @property
    def uses_fast_path(self) -> bool:
        """Whether predictions bypass sklearn's per-call validation (see ``scoring``)."""
        return isinstance(self._scorer, LinearScorer)

    @property
    def scorer_kind(self) -> str:
        """How rows are scored: ``linear``, ``compiled`` or ``estimator``.

        ``linear``: numbers, the fast path; ``compiled``: a pipeline compiled into the linear
        kernel (``iris_model.compiled``); ``estimator``: scikit-learn itself, and
        :attr:`compiled_reason` says why.
        """
        if self.uses_fast_path:
            return "linear"
        return "compiled" if self._compiled is not None else "estimator"

    # -------------------------------------------------------------- prediction
    def validate(self, rows: Any) -> Any:
        """Return ``rows`` as the estimator takes them, or raise.

        A float64 matrix of shape (n, n_features) for a model that scores numbers, else a
        DataFrame with the training columns (in order) and dtypes.

        Raises:
            InvalidInputError: ``rows`` is malformed (the message names row and column), or
                lacks a feature column or has an unknown one.
            BatchTooLargeError: more than :attr:`max_rows` rows.
        """
        return self._table(rows).matrix

    def _table(self, rows: Any, max_rows: int | None = DEFAULT_MAX_ROWS) -> Table:
        """Validate rows; ``max_rows=None`` lifts the batch limit (training, evaluation)."""
        limit = sys.maxsize if max_rows is None else self.max_rows
        names = self._schema_names()
        schema = self.schema
        assert schema is not None  # noqa: S101 - set with the names
        if self._matrix_input:
            if type(rows) is np.ndarray or (
                type(rows) is list and not (rows and isinstance(rows[0], Mapping))
            ):  # the server's hot path
                return Table(
                    to_matrix(rows, n_features=len(names), max_rows=limit, spec=self._spec), None
                )
            if not isinstance(rows, Mapping | list | tuple):  # DataFrame, Series, bad input
                return to_table(rows, feature_names=names, max_rows=limit, spec=self._spec)
            columns = to_columns(rows, schema, max_rows=limit)
            return Table(to_numbers(columns, schema, self._spec), columns.index)
        columns = to_columns(rows, schema, max_rows=limit)
        if self._compiled is not None:  # the compiled pipeline's own float matrix
            return Table(self._compiled.transform(columns), columns.index)
        return Table(to_frame(columns, schema, max_abs=self._spec.max_abs), columns.index)

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

        A DataFrame is matched to :attr:`schema` when it is set, and otherwise gives it
        (:meth:`Schema.infer`); the estimator is fitted on a DataFrame then, else on a float
        matrix. The metadata of a previous fit (metrics, golden pairs) is dropped, and golden
        pairs are recorded on the first training rows, so :func:`save` needs no made-up rows.
        """
        if self.schema is None:
            self.schema = infer_schema(X, self.feature_names or None)
        self.feature_names = self.schema.names
        data = training_input(X, self.schema)
        self.estimator.fit(data, np.asarray(y))
        if self.classes and len(self.classes) != len(self.estimator.classes_):
            self.classes = ()
        self.metadata = {}
        self.schema = learn_unknowns(self.estimator, data, self.schema)
        self._bind()
        self.metadata = {
            "golden": golden_pairs(self, records(data[:_N_GOLDEN], self.feature_names))
        }
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
        self._fitted()
        # Rows are recorded by column name (manifests before schemas: as lists in order), so
        # an edit that renames, swaps or retypes columns no longer reproduces the answers.
        try:
            indices, probabilities = self._classify_all([pair["input"] for pair in golden])
        except InvalidInputError as exc:
            raise ModelLoadError(
                f"the golden pairs' inputs no longer fit the schema: {exc}"
            ) from None
        predicted = indices.tolist()
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

    def _repr_html_(self) -> str:
        """The model and its schema (one row per column) as an HTML table, for notebooks."""
        if self.schema is None:
            return f"<p>{escape(repr(self))}</p>"
        return _html_table(self)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, str]:
        # BaseEstimator's own bundle draws the estimator diagram; ours shows the schema.
        return {"text/plain": repr(self), "text/html": self._repr_html_()}

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


_N_GOLDEN: Final = 3


def _html_table(model: IrisModel) -> str:
    rows = "".join(
        f"<tr><td>{escape(c.name)}</td><td>{c.type}</td><td>{'yes' if c.nullable else ''}</td>"
        f"<td>{escape(', '.join(map(str, c.categories or ()))[:200])}</td></tr>"
        for c in model.schema or ()
    )
    return (
        f"<p><b>{escape(repr(model))}</b></p><table><tr><th>column</th><th>type</th>"
        f"<th>missing allowed</th><th>known values</th></tr>{rows}</table>"
    )


def golden_pairs(model: IrisModel, rows: Any) -> list[dict[str, Any]]:
    """Record what ``model`` answers for ``rows``, for :meth:`IrisModel.self_test`.

    ``rows`` are dicts by column name, or a matrix or DataFrame in the schema's order; they
    are recorded by name.
    """
    if not isinstance(rows, list):
        rows = records(rows, model.feature_names)
    predictions, probabilities = model._classify_all(rows)
    return [
        {"input": row, "prediction": pred, "label": model.classes[pred], "probabilities": proba}
        for row, pred, proba in zip(rows, predictions.tolist(), probabilities.tolist(), strict=True)
    ]


def records(data: Any, names: Sequence[str]) -> list[dict[str, Any]]:
    """Rows (a float matrix or a DataFrame in schema order) as JSON-ready dicts by name.

    Missing values become None; NumPy scalars become Python values.
    """
    if isinstance(data, np.ndarray):
        return [dict(zip(names, row, strict=True)) for row in np.atleast_2d(data).tolist()]
    columns = [data.iloc[:, k].astype(object).tolist() for k in range(len(names))]
    return [
        {name: _json_value(value) for name, value in zip(names, row, strict=True)}
        for row in zip(*columns, strict=True)
    ]


def _json_value(value: Any) -> Any:
    if is_missing(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def infer_schema(
    X: Any,  # noqa: N803 - scikit-learn's name
    feature_names: Sequence[str] | None,
    nullable: Sequence[str] = (),
) -> Schema:
    """The schema of training data: a DataFrame's dtypes, or numbers named ``feature_names``.

    Raises:
        SchemaError: a column the library cannot type (see :meth:`Schema.infer`).
    """
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(X, pandas.DataFrame):
        schema = Schema.infer(X, nullable=nullable)
        if feature_names is not None and set(feature_names) != set(schema.names):
            raise SchemaError(
                f"feature_names {list(feature_names)} differ from the DataFrame's columns"
                f" {list(schema.names)}"
            )
        if feature_names is not None:
            schema = Schema(tuple(schema[name] for name in feature_names))
        return schema
    array = X if isinstance(X, np.ndarray) else np.asarray(X, dtype=object)
    if array.ndim != 2:
        raise SchemaError(f"expected rows of values (2 dimensions), got shape {array.shape}")
    names = (
        tuple(feature_names)
        if feature_names is not None
        else tuple(f"x{k}" for k in range(array.shape[1]))
    )
    if len(names) != array.shape[1]:
        raise SchemaError(f"{len(names)} feature_names for rows of {array.shape[1]} values")
    if array.dtype.kind in "iuf":
        holes = np.isnan(array.astype(np.float64))
        missing = [bool(holes[:, k].any()) for k in range(len(names))]
        declared = [name in nullable for name in names]
        return Schema.numeric(names, [a or b for a, b in zip(missing, declared, strict=True)])
    if pandas is None:
        raise SchemaError("rows of text or mixed values need pandas: pip install pandas")
    return Schema.infer(pandas.DataFrame(array.tolist(), columns=list(names)), nullable=nullable)


_UNSEEN: Final = "\x00a value no training row holds"


def learn_unknowns(estimator: Any, frame: Any, schema: Schema) -> Schema:
    """``schema`` with the known values of the string columns ``estimator`` refuses others of.

    A ``OneHotEncoder(handle_unknown="error")``, say: unseen values are then refused by name
    before the estimator sees them. Columns whose unknown values an encoder ignores keep no
    list: their values pass through, as the estimator wants. Asked of the fitted estimator
    itself, one row per string column.
    """
    if isinstance(frame, np.ndarray):
        return schema
    known: dict[str, list[Any]] = {}
    for column in schema.columns:
        if column.type != "string" or column.categories is not None:
            continue
        trial = frame.iloc[:1].copy()
        trial[column.name] = np.array([_UNSEEN], dtype=object)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "unknown categories will be encoded as zeros"
            try:
                estimator.predict(trial)
            except ValueError:
                values = frame[column.name].dropna().tolist()
                known[column.name] = sorted({str(v) for v in values})
    return schema.with_categories(known) if known else schema


def training_input(X: Any, schema: Schema) -> Any:  # noqa: N803 - scikit-learn's name
    """What the estimator is fitted on: a DataFrame in, a DataFrame out; numbers: a matrix.

    The rows are checked against ``schema`` first (types, missing values, finite numbers)
    and come back in its column order with its dtypes.
    """
    pandas = sys.modules.get("pandas")
    frame_given = pandas is not None and isinstance(X, pandas.DataFrame)
    if schema.all_numeric and not frame_given:
        spec = NumberSpec(nullable=np.array(schema.nullable))
        if isinstance(X, np.ndarray) and X.dtype.kind in "iuf":  # in bulk, not value by value
            return to_matrix(X, n_features=len(schema), max_rows=sys.maxsize, spec=spec)
        return to_numbers(to_columns(X, schema, max_rows=sys.maxsize), schema, spec)
    columns = to_columns(X, schema, max_rows=sys.maxsize)
    return to_frame(columns, schema, max_abs=NumberSpec().max_abs)


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
