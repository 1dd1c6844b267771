"""Training: fit a classifier on the Iris data or your own, and evaluate it on held-out rows."""

from __future__ import annotations

import platform
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import sklearn
from sklearn.base import clone, is_classifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split
from threadpoolctl import threadpool_limits

from iris_model._version import __version__
from iris_model.dataset import CLASS_NAMES, FEATURE_NAMES, load_dataset
from iris_model.errors import TrainingError
from iris_model.evaluation import Evaluation, cv_summary, summarize
from iris_model.model import (
    IrisModel,
    golden_pairs,
    infer_schema,
    learn_unknowns,
    records,
    training_input,
)
from iris_model.schema import Schema, SchemaError

DEFAULT_SEED = 42
DEFAULT_TEST_SIZE = 0.2
DEFAULT_CV_FOLDS = 5
#: The default estimator's hyperparameters (``train(**params)`` overrides them).
DEFAULT_PARAMS: dict[str, Any] = {"C": 1.0, "max_iter": 1000}
# The seed request of the original service, then the first flower of each class.
_GOLDEN_ROWS = [[5.1, 3.5, 1.4, 0.2], [7.0, 3.2, 4.7, 1.4], [6.3, 3.3, 6.0, 2.5]]
_N_GOLDEN = 3


@dataclass(frozen=True)
class TrainingResult:
    """A trained model, its evaluation and the held-out split it was evaluated on.

    Unpacks as ``model, evaluation = iris_model.train()``. ``X_test`` keeps the input's
    type (a DataFrame's rows stay a DataFrame), ``y_test`` holds the labels as given.
    """

    model: IrisModel
    evaluation: Evaluation
    X_test: Any
    y_test: Any

    def __iter__(self) -> Iterator[Any]:
        """Yield the model and its evaluation, for ``model, evaluation = train()``."""
        return iter((self.model, self.evaluation))

    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> Any:
        """``result[0]`` is the model, ``result[1]`` the evaluation, as unpacking gives."""
        return (self.model, self.evaluation)[index]

    def __repr__(self) -> str:
        return (
            f"TrainingResult(model={self.model!r}, evaluation={self.evaluation!r},"
            f" X_test={_shape(self.X_test)}, y_test={len(self.y_test)} labels)"
        )

    def _repr_html_(self) -> str:
        """The model, its schema and its evaluation, as tables for a notebook."""
        return self.model._repr_html_() + self.evaluation._repr_html_()


def _shape(rows: Any) -> str:
    return f"{type(rows).__name__} of {len(rows)} rows"


def train(
    X: Any = None,  # noqa: N803 - scikit-learn's name
    y: Any = None,
    *,
    estimator: Any = None,
    seed: int = DEFAULT_SEED,
    test_size: float = DEFAULT_TEST_SIZE,
    cv_folds: int = DEFAULT_CV_FOLDS,
    refit_full: bool = False,
    feature_names: Sequence[str] | None = None,
    nullable: Sequence[str] = (),
    **params: Any,
) -> TrainingResult:
    """Fit a classifier, evaluate it on a held-out split and cross-validate it.

    Without data, a LogisticRegression on the 150 Iris flowers (the same ``seed`` always
    gives the same split, model and metrics). With ``X`` and ``y``, your own data.

    Args:
        X: The rows: a pandas DataFrame (its columns name the features and their dtypes
            give the schema: numbers, integers, booleans, strings, categories, missing
            values), an array or a list of rows. None for the Iris data. The estimator is
            fitted on a DataFrame with the same columns and dtypes when ``X`` is one.
        y: One class label per row (anything scikit-learn takes: numbers, strings,
            booleans, categoricals). None for the Iris data.
        estimator: Any scikit-learn classifier or Pipeline with ``predict_proba`` (it is
            cloned, never modified). Default: a LogisticRegression.
        seed: Seeds the stratified split, the CV folds and the default estimator.
        test_size: Fraction of the rows held out for evaluation, in (0, 1).
        cv_folds: Number of stratified folds for cross-validation on the training split
            (at least 2; 0 skips cross-validation).
        refit_full: After evaluating, refit the model on all rows (the evaluation stays the
            held-out estimate).
        feature_names: Names of ``X``'s columns when it is not a DataFrame (default: the
            Iris names for the Iris data, else ``x0``, ``x1``, ...).
        nullable: Columns that may be missing at prediction even though the training data
            has no missing value there (columns with missing values allow them anyway).
        **params: Hyperparameters of the estimator, e.g. ``C=0.5, max_iter=200`` for the
            default LogisticRegression.

    Returns:
        The model (fitted on the training split, or on everything with ``refit_full``), its
        evaluation and the held-out split. Unpacks as ``model, evaluation``.

    Raises:
        TrainingError: unusable data, estimator, hyperparameters or split settings.
        InvalidInputError: malformed rows in ``X``.
    """
    _check_settings(test_size, cv_folds)
    if (X is None) != (y is None):
        raise TrainingError("pass both X and y, or neither for the Iris data")
    features: Any
    if X is None:
        features, target = load_dataset()
        schema = Schema.numeric(tuple(feature_names or FEATURE_NAMES))
        frame = None
    else:
        try:
            schema = infer_schema(X, feature_names, nullable)
        except SchemaError as exc:
            raise TrainingError(str(exc)) from None
        frame = X if _is_frame(X) else None
        features = training_input(X, schema)
        target = _target(y, len(features))
    names = schema.names
    model_estimator = _estimator(estimator, seed, params)
    positions = np.arange(len(target))
    try:
        train_at, test_at = train_test_split(
            positions, test_size=test_size, random_state=seed, stratify=target
        )
    except ValueError as exc:
        raise TrainingError(f"cannot split the data for evaluation: {exc}") from None
    x_train, x_test = _take(features, train_at), _take(features, test_at)
    y_train, y_test = target[train_at], target[test_at]
    # Small data sets are far too small for BLAS threads to help; on a busy 2-core machine
    # they made training the Iris model 6x slower than single-threaded.
    with threadpool_limits(limits=1):
        fitted = _fit(clone(model_estimator), x_train, y_train)
        cv = _cross_validate(model_estimator, x_train, y_train, cv_folds, seed)
    inferred = schema
    schema = learn_unknowns(fitted, x_train, inferred)
    labels = np.asarray(fitted.classes_)
    display = CLASS_NAMES if X is None else tuple(str(c) for c in labels.tolist())
    model = IrisModel(fitted, classes=display, schema=schema)
    predicted, _ = model._classify_all(x_test)
    evaluation = summarize(
        model.label_indices(y_test), predicted, display, n_train=len(y_train), **cv
    )
    if refit_full:
        with threadpool_limits(limits=1):
            refitted = _fit(clone(model_estimator), features, target)
        schema = learn_unknowns(refitted, features, inferred)
        model = IrisModel(refitted, classes=display, schema=schema)
    golden_rows = records(np.asarray(_GOLDEN_ROWS) if X is None else x_test[:_N_GOLDEN], names)
    model.metadata = {
        "estimator": type(fitted).__name__,
        "params": _json_params(model_estimator),
        "feature_names": list(names),
        "schema": schema.as_dict(),
        "classes": list(display),
        "training": {
            "seed": seed,
            "test_size": test_size,
            "cv_folds": cv_folds,
            "refit_full": refit_full,
            "data": "iris" if X is None else "user",
            "n_rows": len(target),
        },
        "metrics": evaluation.as_dict(),
        "versions": runtime_versions(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "golden": golden_pairs(model, golden_rows),
    }
    held_out = frame.iloc[test_at] if frame is not None else x_test
    y_given = y if y is not None else target
    y_held = y_given.iloc[test_at] if hasattr(y_given, "iloc") else np.asarray(y_given)[test_at]
    return TrainingResult(model, evaluation, held_out, y_held)


def _check_settings(test_size: float, cv_folds: int) -> None:
    if isinstance(test_size, bool) or not isinstance(test_size, int | float):
        raise TrainingError(f"test_size must be a number in (0, 1), got {test_size!r}")
    if not 0 < test_size < 1:
        raise TrainingError(f"test_size must be between 0 and 1 (exclusive), got {test_size}")
    if isinstance(cv_folds, bool) or not isinstance(cv_folds, int) or cv_folds in (-1, 1):
        cv_folds = -1
    if cv_folds < 0:
        raise TrainingError("cv_folds must be 0 (no cross-validation) or at least 2")


def _is_frame(X: Any) -> bool:  # noqa: N803
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(X, pandas.DataFrame)


def _take(data: Any, at: Any) -> Any:
    """Rows ``at`` (positions) of a matrix or a DataFrame."""
    return data.iloc[at] if _is_frame(data) else data[at]


def _target(y: Any, n_rows: int) -> np.ndarray[Any, Any]:
    """The labels as a NumPy array of one kind: strings, booleans, integers or floats.

    pandas strings (``numpy.str_`` elements under pandas 3), categoricals and object arrays
    of one Python type are all made plain; missing or mixed labels are refused.
    """
    if getattr(getattr(y, "dtype", None), "name", None) == "category":
        y = np.asarray(y.astype(object))
    target = np.asarray(y)
    if target.ndim != 1:
        raise TrainingError(f"y must hold one label per row, got shape {target.shape}")
    if len(target) != n_rows:
        raise TrainingError(f"{n_rows} rows but {len(target)} labels")
    if target.dtype.kind == "f" and not np.isfinite(target).all():
        raise TrainingError("y holds NaN or infinite labels")
    if target.dtype.kind not in "O":
        if target.dtype.kind not in "iuUbf":
            raise TrainingError(f"labels must be numbers, strings or booleans, got {target.dtype}")
        return target
    values = target.tolist()
    if any(v is None or (isinstance(v, float) and not np.isfinite(v)) or _is_na(v) for v in values):
        raise TrainingError("y holds missing labels (None or NaN)")
    for kind, dtype in ((str, str), (bool | np.bool_, bool)):
        if all(isinstance(v, kind) for v in values):
            return np.asarray([dtype(v) for v in values])
    if all(isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_) for v in values):
        return np.asarray(values, dtype=np.int64)
    if all(isinstance(v, float | np.floating) for v in values):
        return np.asarray(values, dtype=np.float64)
    kinds = sorted({type(v).__name__ for v in values})
    raise TrainingError(f"y mixes label types {kinds}: give every label one type")


def _is_na(value: Any) -> bool:
    return type(value).__name__ in ("NAType", "NaTType")


def _estimator(estimator: Any, seed: int, params: dict[str, Any]) -> Any:
    if estimator is None:
        estimator = LogisticRegression(**{**DEFAULT_PARAMS, "random_state": seed})
    elif not (is_classifier(estimator) and hasattr(estimator, "predict_proba")):
        raise TrainingError(
            f"estimator must be a scikit-learn classifier (or Pipeline ending in one) with"
            f" predict_proba, got {type(estimator).__name__}"
        )
    estimator = clone(estimator)
    try:
        return estimator.set_params(**params) if params else estimator
    except ValueError as exc:
        raise TrainingError(
            f"invalid hyperparameter for {type(estimator).__name__}: {exc}"
        ) from None


def _fit(estimator: Any, features: Any, target: Any) -> Any:
    try:
        return estimator.fit(features, target)
    except (ValueError, TypeError) as exc:
        raise TrainingError(f"{type(estimator).__name__} could not be fitted: {exc}") from None


def _cross_validate(
    estimator: Any, features: Any, target: Any, folds: int, seed: int
) -> dict[str, Any]:
    if folds == 0:
        return {}
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    try:
        scores = cross_val_score(clone(estimator), features, target, cv=splitter)
    except ValueError as exc:
        raise TrainingError(f"cannot cross-validate with {folds} folds: {exc}") from None
    return cv_summary(scores, folds)


def _json_params(estimator: Any) -> dict[str, Any]:
    """The estimator's plain hyperparameters (numbers, strings, booleans, None) for the manifest."""
    plain = (str, int, float, bool, type(None))
    return {
        k: v
        for k, v in estimator.get_params(deep=True).items()
        if isinstance(v, plain) and not (isinstance(v, float) and not np.isfinite(v))
    }


def runtime_versions() -> dict[str, str]:
    """Versions of everything that decides whether a pickled model loads and agrees."""
    import joblib  # noqa: PLC0415 - only its version is needed, and only here

    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "joblib": joblib.__version__,
        "iris-model": __version__,
    }
