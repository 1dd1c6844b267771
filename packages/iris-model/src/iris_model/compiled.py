"""Common preprocessing pipelines compiled into the library's linear scorer.

A fitted ``Pipeline`` of a ``ColumnTransformer`` (columns by name or position, remainder
drop or passthrough) of ``OneHotEncoder``, ``OrdinalEncoder``, ``SimpleImputer``,
``StandardScaler``, ``MinMaxScaler``, ``RobustScaler``, ``MaxAbsScaler`` and passthrough,
then a ``LogisticRegression`` the :class:`~iris_model.scoring.LinearScorer` reproduces,
is turned into per-column writers of one float matrix: a one-hot encoder becomes a dict
lookup into column offsets, an imputer a fill value, a scaler two vectors, applied with
the same float operations scikit-learn applies. The schema's checked columns go straight to
that matrix, with no DataFrame built per call (scikit-learn and pandas spend ~2 ms there on
one row).

Trust by proof: :func:`compile_estimator` runs the compiled scorer beside the pipeline on
proof rows (the golden rows, and rows drawn from the schema with missing values and
unknown strings); any difference in class, or in a probability beyond
:data:`TOLERANCE`, and the pipeline serves instead, with the reason.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MaxAbsScaler,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    RobustScaler,
    StandardScaler,
)

from iris_model.errors import InvalidInputError
from iris_model.frames import Columns, check_column, to_columns, to_frame
from iris_model.schema import Schema
from iris_model.scoring import FLOAT32_MAX, Indices, LinearScorer, Matrix, scorer_for

logger = logging.getLogger(__name__)

#: How far a compiled probability may be from the pipeline's (relative and absolute).
TOLERANCE: Final = 1e-9
_UNSEEN: Final = "\x00a value no training row holds (proof)"
_N_PROOF: Final = 24

# A block of values between steps: one 1-D array per column (any dtype), or a float matrix.
Block = Any
Step = Callable[[Block, Callable[[int], str]], Block]


class UnsupportedStepError(Exception):
    """A step the compiler does not handle: the pipeline serves (the message says why)."""


class _Meta:
    """What the compiler knows of a column between steps."""

    __slots__ = ("name", "nullable", "numeric")

    def __init__(self, name: str, *, numeric: bool, nullable: bool) -> None:
        self.name, self.numeric, self.nullable = name, numeric, nullable


class CompiledScorer:
    """Schema columns -> float matrix (per-column writers) -> the linear kernel.

    :meth:`transform` takes the schema's unchecked columns; :meth:`predict` and
    :meth:`predict_proba` take its matrix, as every :class:`~iris_model.scoring.Scorer`.
    """

    #: The bound every numeric value is checked against: the pipeline's own (float32).
    max_abs = FLOAT32_MAX

    def __init__(
        self,
        schema: Schema,
        blocks: Sequence[tuple[list[int], list[Step], slice]],
        width: int,
        linear: LinearScorer,
    ) -> None:
        self._schema = schema
        self._blocks = blocks
        self._width = width
        self._linear = linear

    def transform(self, columns: Columns) -> Matrix:
        """Check each column against the schema and write the classifier's float matrix.

        Raises:
            InvalidInputError: a value the schema refuses, or an unknown category for an
                encoder with ``handle_unknown="error"`` (naming row and column).
        """
        checked = [
            check_column(column, values, columns.row_label, self.max_abs)
            for column, values in zip(self._schema.columns, columns.values, strict=True)
        ]
        matrix = np.empty((columns.n_rows, self._width), dtype=np.float64)
        for positions, steps, out in self._blocks:
            block: Block = [checked[k] for k in positions]
            for step in steps:
                block = step(block, columns.row_label)
            matrix[:, out] = _as_matrix(block, columns.n_rows)
        return matrix

    def predict(self, matrix: Matrix) -> Indices:
        """Return the index of the most likely class of each row."""
        return self._linear.predict(matrix)

    def predict_proba(self, matrix: Matrix) -> Matrix:
        """Return the probability of every class for each row."""
        return self._linear.predict_proba(matrix)


def _as_matrix(block: Block, n_rows: int) -> Matrix:
    if isinstance(block, np.ndarray):
        return block
    if not block:
        return np.empty((n_rows, 0), dtype=np.float64)
    if len(block) == 1:
        return np.asarray(block[0], dtype=np.float64).reshape(-1, 1)
    return np.column_stack([np.asarray(c, dtype=np.float64) for c in block])


def compile_estimator(
    estimator: Any, schema: Schema, proof_rows: Sequence[Any] = ()
) -> tuple[CompiledScorer | None, str]:
    """Compile a fitted pipeline, and prove it against the pipeline on rows.

    Returns:
        The compiled scorer and ``"compiled"``, or None and why the pipeline serves.
    """
    try:
        compiled = _compile(estimator, schema)
    except UnsupportedStepError as exc:
        return None, str(exc)
    rows = list(proof_rows) + _drawn_rows(schema)
    failure = _prove(compiled, estimator, schema, rows)
    if failure:
        logger.warning("compiled scorer refused, the pipeline serves: %s", failure)
        return None, failure
    return compiled, "compiled"


# ------------------------------------------------------------------- compiling
def _compile(estimator: Any, schema: Schema) -> CompiledScorer:
    if type(estimator) is not Pipeline:
        raise UnsupportedStepError(f"{type(estimator).__name__} is not a Pipeline")
    steps = [step for _, step in estimator.steps]
    final = steps[-1]
    linear = scorer_for(final, numbers_only=True)
    if not isinstance(linear, LinearScorer):
        raise UnsupportedStepError(
            f"the final step {type(final).__name__} is not a linear model it scores"
        )
    linear = LinearScorer(final, guard_overflow=True)
    metas = [
        _Meta(c.name, numeric=c.numeric or c.type == "boolean", nullable=c.nullable)
        for c in schema.columns
    ]
    middle = steps[:-1]
    blocks: list[tuple[list[int], list[Step], slice]]
    if middle and isinstance(middle[0], ColumnTransformer):
        blocks, width, metas = _column_transformer(middle[0], schema, metas)
        middle = middle[1:]
    else:
        blocks, width = [(list(range(len(metas))), [], slice(0, len(metas)))], len(metas)
    if middle:  # steps over the whole matrix: one block of everything written so far
        inner = blocks
        blocks = [(list(range(len(schema))), [_inner(inner, width)], slice(0, width))]
        for step in middle:
            fn, metas = _step(step, metas)
            blocks[0][1].append(fn)
        width = len(metas)
        blocks[0] = (blocks[0][0], blocks[0][1], slice(0, width))
    for meta in metas:
        if not meta.numeric:
            raise UnsupportedStepError(f"column {meta.name!r} reaches the classifier as text")
        if meta.nullable:
            raise UnsupportedStepError(
                f"column {meta.name!r} may be missing and no imputer fills it before the classifier"
            )
    n_in = getattr(final, "n_features_in_", width)
    if n_in != width:
        raise UnsupportedStepError(f"the steps write {width} columns, the classifier takes {n_in}")
    return CompiledScorer(schema, blocks, width, linear)


def _inner(blocks: Sequence[tuple[list[int], list[Step], slice]], width: int) -> Step:
    """The column transformer's output as one float matrix, for steps that follow it."""

    def write(block: Block, row_label: Callable[[int], str]) -> Block:
        n_rows = len(block[0]) if block else 0
        matrix = np.empty((n_rows, width), dtype=np.float64)
        for positions, steps, out in blocks:
            part: Block = [block[k] for k in positions]
            for step in steps:
                part = step(part, row_label)
            matrix[:, out] = _as_matrix(part, n_rows)
        return matrix

    return write


def _column_transformer(
    ct: ColumnTransformer, schema: Schema, metas: list[_Meta]
) -> tuple[list[tuple[list[int], list[Step], slice]], int, list[_Meta]]:
    names = list(getattr(ct, "feature_names_in_", schema.names))
    if [str(n) for n in names] != list(schema.names):
        raise UnsupportedStepError(
            "the ColumnTransformer was fitted on other columns than the schema's"
        )
    blocks = []
    out_metas: list[_Meta] = []
    width = 0
    for name, transformer, columns in ct.transformers_:
        positions = _positions(columns, names)
        out = ct.output_indices_[name]
        if (isinstance(transformer, str) and transformer == "drop") or out.stop == out.start:
            continue
        steps: list[Step] = []
        block_metas = [metas[k] for k in positions]
        inner = transformer.steps if type(transformer) is Pipeline else [(name, transformer)]
        for _, step in inner:
            fn, block_metas = _step(step, block_metas)
            steps.append(fn)
        if len(block_metas) != out.stop - out.start:
            raise UnsupportedStepError(
                f"transformer {name!r} writes an unexpected number of columns"
            )
        blocks.append((positions, steps, out))
        out_metas += block_metas
        width = max(width, out.stop)
    return blocks, width, out_metas


def _positions(columns: Any, names: list[Any]) -> list[int]:
    if isinstance(columns, str):
        columns = [columns]
    if isinstance(columns, int | np.integer):
        columns = [int(columns)]
    if isinstance(columns, slice | Callable):
        raise UnsupportedStepError("a ColumnTransformer selecting columns by slice or callable")
    items = list(np.asarray(columns).tolist()) if len(columns) > 0 else []
    if items and all(isinstance(c, bool) for c in items):
        return [k for k, keep in enumerate(items) if keep]
    if all(isinstance(c, int) for c in items):
        return [c % len(names) for c in items]
    try:
        return [names.index(c) for c in items]
    except ValueError:
        raise UnsupportedStepError(
            f"a ColumnTransformer selecting unknown columns {items}"
        ) from None


def _step(step: Any, metas: list[_Meta]) -> tuple[Step, list[_Meta]]:
    """One transformer as a function of the block, and what it makes of the columns."""
    kind = type(step)
    # A fitted ColumnTransformer holds "passthrough" as an identity FunctionTransformer.
    if (
        step is None
        or (isinstance(step, str) and step == "passthrough")
        or (kind is FunctionTransformer and step.func is None)
    ):
        return (lambda block, _: block), metas
    if kind is SimpleImputer:
        return _imputer(step, metas)
    if kind is OneHotEncoder:
        return _one_hot(step, metas)
    if kind is OrdinalEncoder:
        return _ordinal(step, metas)
    scalers = (StandardScaler, MinMaxScaler, RobustScaler, MaxAbsScaler)
    if kind in scalers:
        for meta in metas:
            if not meta.numeric:
                raise UnsupportedStepError(f"{kind.__name__} on the text column {meta.name!r}")
        return _scaler(step), metas
    raise UnsupportedStepError(f"{kind.__name__} is not a step the compiler supports")


def _scaler(step: Any) -> Step:
    ops: list[tuple[str, Matrix]] = []
    if isinstance(step, StandardScaler):
        if step.with_mean:
            ops.append(("sub", step.mean_))
        if step.with_std:
            ops.append(("div", step.scale_))
    elif isinstance(step, RobustScaler):
        if step.with_centering:
            ops.append(("sub", step.center_))
        if step.with_scaling:
            ops.append(("div", step.scale_))
    elif isinstance(step, MaxAbsScaler):
        ops.append(("div", step.scale_))
    else:  # MinMaxScaler
        ops += [("mul", step.scale_), ("add", step.min_)]
    clip = getattr(step, "clip", False) and isinstance(step, MinMaxScaler)
    low, high = step.feature_range if clip else (0.0, 0.0)

    def scale(block: Block, _: Callable[[int], str]) -> Block:
        n_rows = len(block) if isinstance(block, np.ndarray) else len(block[0])
        matrix = np.array(_as_matrix(block, n_rows), dtype=np.float64)  # a copy, as sklearn
        for op, vector in ops:  # scikit-learn's own in-place operations, in its order
            if op == "sub":
                matrix -= vector
            elif op == "div":
                matrix /= vector
            elif op == "mul":
                matrix *= vector
            else:
                matrix += vector
        if clip:
            np.clip(matrix, low, high, out=matrix)
        return matrix

    return scale


def _missing(values: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    if values.dtype.kind == "f":
        nan: npt.NDArray[np.bool_] = np.isnan(values)
        return nan
    if values.dtype.kind != "O":
        return np.zeros(len(values), dtype=bool)
    return np.fromiter((v != v for v in values.tolist()), bool, len(values))  # noqa: PLR0124


def _imputer(step: SimpleImputer, metas: list[_Meta]) -> tuple[Step, list[_Meta]]:
    missing_values = step.missing_values
    if not (isinstance(missing_values, float) and np.isnan(missing_values)):
        raise UnsupportedStepError("a SimpleImputer whose missing_values is not NaN")
    fills = list(step.statistics_.tolist())
    if any(isinstance(f, float) and f != f for f in fills):  # noqa: PLR0124
        raise UnsupportedStepError("a SimpleImputer with a column it saw no value of")
    indicated: list[int] = []
    if step.add_indicator:
        indicator = step.indicator_
        if indicator.features != "missing-only" or indicator.sparse not in ("auto", False):
            raise UnsupportedStepError("a SimpleImputer with a non-default MissingIndicator")
        indicated = [int(k) for k in indicator.features_]
    numeric = all(m.numeric for m in metas) and all(
        isinstance(f, int | float) and not isinstance(f, bool) for f in fills
    )
    fill_vector = np.asarray(fills, dtype=np.float64) if numeric else None

    def impute(block: Block, _: Callable[[int], str]) -> Block:
        if numeric and fill_vector is not None:
            n_rows = len(block) if isinstance(block, np.ndarray) else len(block[0])
            matrix = np.array(_as_matrix(block, n_rows), dtype=np.float64)
            holes = np.isnan(matrix)
            filled = np.where(holes, fill_vector, matrix)
            if not indicated:
                return filled
            return np.hstack([filled, holes[:, indicated].astype(np.float64)])
        columns = list(block.T) if isinstance(block, np.ndarray) else list(block)
        holes_list = [_missing(np.asarray(c)) for c in columns]
        out: list[Any] = []
        for values, holes_k, fill in zip(columns, holes_list, fills, strict=True):
            filled = values
            if holes_k.any():
                filled = np.asarray(values, dtype=object).copy()
                filled[holes_k] = fill
            out.append(filled)
        out += [holes_list[k].astype(np.float64) for k in indicated]
        return out

    new = [_Meta(m.name, numeric=m.numeric, nullable=False) for m in metas]
    new += [_Meta(f"missing {metas[k].name}", numeric=True, nullable=False) for k in indicated]
    return impute, new


def _lookup(categories: npt.NDArray[Any]) -> tuple[dict[Any, int], int]:
    """Category -> index, and the index of the missing-value category (-1 when none)."""
    index: dict[Any, int] = {}
    missing = -1
    for k, value in enumerate(categories.tolist()):
        if value is None or (isinstance(value, float) and value != value):  # noqa: PLR0124
            missing = k
        else:
            index[value] = k
    return index, missing


def _codes(values: npt.NDArray[Any], index: dict[Any, int], missing: int) -> npt.NDArray[np.int64]:
    items = values.tolist()
    return np.fromiter(
        (missing if v != v else index.get(v, -1) for v in items),  # noqa: PLR0124
        np.int64,
        len(items),
    )


def _unknown(
    name: str, codes: npt.NDArray[np.int64], values: Any, row_label: Callable[[int], str]
) -> InvalidInputError:
    i = int(np.argmax(codes < 0))
    return InvalidInputError(
        f"row {row_label(i)}, column {name!r}: unknown value {np.asarray(values)[i]!r}"
    )


def _one_hot(step: OneHotEncoder, metas: list[_Meta]) -> tuple[Step, list[_Meta]]:
    if step.min_frequency is not None or step.max_categories is not None:
        raise UnsupportedStepError("a OneHotEncoder grouping infrequent categories")
    if step.handle_unknown not in ("error", "ignore", "infrequent_if_exist"):
        raise UnsupportedStepError(f"a OneHotEncoder with handle_unknown={step.handle_unknown!r}")
    refuse = step.handle_unknown == "error"
    drops = step.drop_idx_ if step.drop_idx_ is not None else [None] * len(metas)
    layout = []
    offset = 0
    out_metas: list[_Meta] = []
    for meta, categories, drop in zip(metas, step.categories_, drops, strict=True):
        index, missing = _lookup(categories)
        # Category k's output column, or -1 (the dropped category writes no 1).
        column_of = np.full(len(categories) + 1, -1, dtype=np.int64)
        kept = [k for k in range(len(categories)) if drop is None or k != int(drop)]
        column_of[kept] = offset + np.arange(len(kept))
        layout.append((meta.name, index, missing, column_of))
        out_metas += [
            _Meta(f"{meta.name}={categories[k]}", numeric=True, nullable=False) for k in kept
        ]
        offset += len(kept)
    width = offset

    def encode(block: Block, row_label: Callable[[int], str]) -> Block:
        columns = list(block.T) if isinstance(block, np.ndarray) else list(block)
        n_rows = len(columns[0])
        matrix = np.zeros((n_rows, width), dtype=np.float64)
        rows = np.arange(n_rows)
        for values, (name, index, missing, column_of) in zip(columns, layout, strict=True):
            codes = _codes(np.asarray(values), index, missing)
            if refuse and (codes < 0).any():
                raise _unknown(name, codes, values, row_label)
            targets = column_of[codes]  # code -1 -> the last entry, -1: no column
            hit = targets >= 0
            matrix[rows[hit], targets[hit]] = 1.0
        return matrix

    return encode, out_metas


def _ordinal(step: OrdinalEncoder, metas: list[_Meta]) -> tuple[Step, list[_Meta]]:
    if step.min_frequency is not None or step.max_categories is not None:
        raise UnsupportedStepError("an OrdinalEncoder grouping infrequent categories")
    if np.dtype(step.dtype) != np.float64:
        raise UnsupportedStepError(f"an OrdinalEncoder with dtype {step.dtype}")
    refuse = step.handle_unknown == "error"
    unknown_value = float(step.unknown_value) if not refuse else np.nan
    missing_value = float(step.encoded_missing_value)
    layout = [(m.name, *_lookup(c)) for m, c in zip(metas, step.categories_, strict=True)]
    nullable = not refuse and np.isnan(unknown_value)

    def encode(block: Block, row_label: Callable[[int], str]) -> Block:
        columns = list(block.T) if isinstance(block, np.ndarray) else list(block)
        out = np.empty((len(columns[0]), len(columns)), dtype=np.float64)
        for j, (values, (name, index, missing)) in enumerate(zip(columns, layout, strict=True)):
            codes = _codes(np.asarray(values), index, missing)
            unknown = codes < 0
            if refuse and unknown.any():
                raise _unknown(name, codes, values, row_label)
            column = codes.astype(np.float64)
            column[unknown] = unknown_value
            if missing >= 0:
                column[codes == missing] = missing_value
            out[:, j] = column
        return out

    new = [
        _Meta(
            m.name,
            numeric=True,
            nullable=nullable or (np.isnan(missing_value) and _lookup(c)[1] >= 0),
        )
        for m, c in zip(metas, step.categories_, strict=True)
    ]
    return encode, new


# ----------------------------------------------------------------------- proof
def _drawn_rows(schema: Schema) -> list[dict[str, Any]]:
    """Rows drawn from the schema: known values, unknown strings, missing values."""
    rng = np.random.default_rng(28)
    rows: list[dict[str, Any]] = [{} for _ in range(_N_PROOF)]
    for column in schema.columns:
        if column.type == "number":
            scale = 10.0 ** rng.integers(-2, 7, _N_PROOF)
            values: list[Any] = (rng.normal(0.0, 1.0, _N_PROOF) * scale).tolist()
        elif column.type == "integer":
            values = rng.integers(-3, 50, _N_PROOF).tolist()
        elif column.type == "boolean":
            values = [bool(v) for v in rng.integers(0, 2, _N_PROOF)]
        else:
            known = list(column.categories or ["probe"])
            values = [known[int(k)] for k in rng.integers(0, len(known), _N_PROOF)]
            if column.categories is None:
                values[1::4] = [_UNSEEN] * len(values[1::4])
        if column.nullable:
            values[2::5] = [None] * len(values[2::5])
        for row, value in zip(rows, values, strict=True):
            row[column.name] = value
    return rows


def _prove(compiled: CompiledScorer, estimator: Any, schema: Schema, rows: list[Any]) -> str:
    """Empty if the compiled scorer answers as the pipeline on every row, else why not."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "unknown categories will be encoded as zeros"
        return _compare(compiled, estimator, schema, rows)


Answers = tuple[Indices, Matrix] | None


def _compare(compiled: CompiledScorer, estimator: Any, schema: Schema, rows: list[Any]) -> str:
    # All rows in one batch first (one pipeline call, cheap at load); row by row only when
    # one side refuses some row, to prove that both refuse the same rows.
    if rows:
        expected, got = _both(compiled, estimator, schema, rows)
        if expected is not None and got is not None:
            return _differs(rows, expected, got)
    for k, row in enumerate(rows):
        expected, got = _both(compiled, estimator, schema, [row])
        if expected is None and got is None:
            continue
        if expected is None or got is None:
            who = "the pipeline" if expected is None else "the compiled scorer"
            return f"proof row {k} ({row}): only {who} refuses it"
        failure = _differs([row], expected, got, first=k)
        if failure:
            return failure
    return ""


def _both(
    compiled: CompiledScorer, estimator: Any, schema: Schema, rows: list[Any]
) -> tuple[Answers, Answers]:
    """The pipeline's and the compiled scorer's classes and probabilities (None: refused)."""
    columns = to_columns(rows, schema, max_rows=len(rows))
    expected: Answers = None
    got: Answers = None
    try:
        frame = to_frame(columns, schema, max_abs=compiled.max_abs)
        classes = np.searchsorted(np.asarray(estimator.classes_), estimator.predict(frame))
        expected = (classes, estimator.predict_proba(frame))
    except (ValueError, InvalidInputError):
        pass
    try:
        matrix = compiled.transform(columns)
        got = (compiled.predict(matrix), compiled.predict_proba(matrix))
    except InvalidInputError:
        pass
    return expected, got


def _differs(
    rows: list[Any], expected: tuple[Indices, Matrix], got: tuple[Indices, Matrix], first: int = 0
) -> str:
    close = np.isclose(got[1], expected[1], rtol=TOLERANCE, atol=TOLERANCE).all(axis=1)
    bad = (got[0] != expected[0]) | ~close
    if not bad.any():
        return ""
    i = int(np.argmax(bad))
    return (
        f"proof row {first + i} ({rows[i]}): the compiled scorer answers {got[1][i].tolist()},"
        f" the pipeline {expected[1][i].tolist()}"
    )
