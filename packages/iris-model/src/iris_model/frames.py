"""Typed rows checked against a :class:`~iris_model.schema.Schema`, as the estimator's DataFrame.

An estimator fitted on a DataFrame gets a DataFrame again: the training columns, in the
training order, with a dtype per column type (``number`` float64, ``integer`` int64,
``boolean`` bool, ``string`` object, ``category`` the training categories), and missing
values as NaN where the schema allows them. Rows come as:

- a pandas DataFrame (columns matched by name, in any order; integer labels match
  ``"0"``, ``"1"``, ...) or a Series (one row, indexed by column name);
- a mapping of column name to a sequence of values (one per row), or to one value (one row);
- a list of mappings, one per row (``{"region": "west", "price": 1276835.1}``);
- a list of rows, or one row, of values in the schema's order.

Every error names the row (a frame's index label, else its position) and the column.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from iris_model.errors import InvalidInputError
from iris_model.schema import Column, Schema
from iris_model.validation import (
    NumberSpec,
    _check_batch_size,
    _describe,
    _names,
    _shorten,
    _to_float,
    is_missing,
    match_columns,
    row_name,
    series_row,
)

_SEQUENCES = (list, tuple)
# JSON's values: numbers convert in bulk; text, booleans and ints are never missing.
_PLAIN_NUMBERS = frozenset({int, float, type(None)})
_NEVER_MISSING = frozenset({str, bool, int})
_ROWS = (list, tuple, np.ndarray)


class Columns(NamedTuple):
    """Rows split into one array of values per schema column, plus how to name a row."""

    values: list[npt.NDArray[Any]]
    n_rows: int
    index: Any
    row_label: Callable[[int], str]


def _position(i: int) -> str:
    return str(i)


def to_columns(rows: Any, schema: Schema, *, max_rows: int) -> Columns:
    """Split ``rows`` (any form listed in the module docstring) into the schema's columns.

    Raises:
        InvalidInputError: a missing, unknown or duplicate column, a ragged or empty batch.
        BatchTooLargeError: more than ``max_rows`` rows.
    """
    names = schema.names
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(rows, pandas.DataFrame):
        positions = match_columns(rows.columns.tolist(), names, "DataFrame")
        index = rows.index
        arrays = [series.to_numpy() for _, series in rows.items()]  # cheaper than iloc
        values = [arrays[k] for k in positions]
        return _checked(values, len(rows), max_rows, index, lambda i: row_name(index[i]))
    if pandas is not None and isinstance(rows, pandas.Series):
        row = series_row(rows, names)
        index = [0 if rows.name is None else rows.name]
        return _checked(_objects([[v] for v in row]), 1, max_rows, index, _label_of(index))
    if isinstance(rows, Mapping):
        return _from_mapping(rows, names, max_rows)
    if isinstance(rows, np.ndarray):
        rows = rows.tolist()
    if not isinstance(rows, _SEQUENCES):
        raise InvalidInputError(
            f"expected rows: a DataFrame, a dict of columns, a list of row dicts or of rows,"
            f" got {_describe(rows)}"
        )
    if len(rows) == 0:
        raise InvalidInputError("empty input: expected at least one row")
    if all(isinstance(row, Mapping) for row in rows):
        return _from_records(rows, names, max_rows)
    batch = rows if isinstance(rows[0], _ROWS) else [rows]
    _check_batch_size(len(batch), max_rows)
    for i, row in enumerate(batch):
        if not isinstance(row, _ROWS):
            raise InvalidInputError(
                f"row {i}: expected a list of {len(names)} values, got {_describe(row)}"
            )
        if len(row) != len(names):
            raise InvalidInputError(
                f"row {i}: expected {len(names)} values ({_names(names)}), got {len(row)}"
            )
    return _checked(_objects(list(zip(*batch, strict=True))), len(batch), max_rows, None, _position)


def _from_mapping(rows: Mapping[Any, Any], names: Sequence[str], max_rows: int) -> Columns:
    keys = list(rows)
    positions = match_columns(keys, names, "input")
    columns = [rows[keys[k]] for k in positions]
    is_column = [isinstance(c, _ROWS) or _is_series(c) for c in columns]
    if not any(is_column):  # one row: a value per column
        return _checked(_objects([[v] for v in columns]), 1, max_rows, None, _position)
    if not all(is_column):
        at = is_column.index(False)
        raise InvalidInputError(
            f"column {names[at]!r}: expected a list of values like the other columns,"
            f" got {_describe(columns[at])}"
        )
    for column, values in zip(names, columns, strict=True):
        if isinstance(values, np.ndarray) and values.ndim != 1:
            raise InvalidInputError(
                f"column {column!r}: expected one value per row, got shape {values.shape}"
            )
    lengths = {len(c) for c in columns}
    if len(lengths) != 1:
        shown = ", ".join(f"{n!r}: {len(c)}" for n, c in zip(names, columns, strict=True))
        raise InvalidInputError(f"columns differ in length ({shown})")
    values = [
        c.to_numpy() if _is_series(c) else c if isinstance(c, np.ndarray) else _objects([c])[0]
        for c in columns
    ]
    return _checked(values, lengths.pop(), max_rows, None, _position)


def _from_records(
    rows: Sequence[Mapping[Any, Any]], names: Sequence[str], max_rows: int
) -> Columns:
    _check_batch_size(len(rows), max_rows)
    expected = set(names)
    for i, record in enumerate(rows):
        if record.keys() != expected:
            try:
                match_columns(list(record), names, "row")
            except InvalidInputError as exc:
                raise InvalidInputError(f"row {i}: {exc}") from None
    return _checked(
        _objects([[r[n] for r in rows] for n in names]), len(rows), max_rows, None, _position
    )


def _checked(
    values: list[npt.NDArray[Any]],
    n_rows: int,
    max_rows: int,
    index: Any,
    row_label: Callable[[int], str],
) -> Columns:
    if n_rows == 0:
        raise InvalidInputError("empty input: expected at least one row")
    _check_batch_size(n_rows, max_rows)
    return Columns(values, n_rows, index, row_label)


def _objects(columns: Sequence[Sequence[Any]]) -> list[npt.NDArray[Any]]:
    """Each column as a 1-D object array (never letting NumPy guess a type)."""
    out = []
    for column in columns:
        array = np.empty(len(column), dtype=object)
        array[:] = list(column)
        out.append(array)
    return out


def _label_of(index: Any) -> Callable[[int], str]:
    return lambda i: row_name(index[i])


def _is_series(value: Any) -> bool:
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(value, pandas.Series)


# ----------------------------------------------------------------- checking values
def check_column(
    column: Column, values: npt.NDArray[Any], row_label: Callable[[int], str], max_abs: float
) -> npt.NDArray[Any]:
    """``values`` of ``column`` checked against its type, as the array the estimator gets.

    Raises:
        InvalidInputError: a value of another type, a missing value where none is allowed,
            a non-finite or too large number, an unknown category; naming row and column.
    """

    def where(i: int) -> str:
        return f"row {row_label(i)}, column {column.name!r}"

    if column.numeric:
        return _numbers(column, values, where, max_abs)
    missing = _missing(values)
    if missing.any() and not column.nullable:
        i = int(np.argmax(missing))
        raise InvalidInputError(f"{where(i)}: a missing value, and the column allows none")
    if column.type == "boolean":
        if values.dtype.kind == "b":
            return values
        for i, value in enumerate(values.tolist()):
            if not missing[i] and not isinstance(value, bool | np.bool_):
                raise InvalidInputError(
                    f"{where(i)}: expected true or false, got {_describe(value)}"
                )
        return _with_nan(values, missing) if missing.any() else values.astype(bool)
    items = values.tolist()
    if column.type == "string" and values.dtype.kind != "U":
        for i, value in enumerate(items):
            if not missing[i] and not isinstance(value, str):
                raise InvalidInputError(f"{where(i)}: expected a string, got {_describe(value)}")
    if column.categories is not None:
        known = set(column.categories)
        for i, value in enumerate(items):
            if not missing[i] and not _member(value, known):
                shown = _names(list(column.categories))
                raise InvalidInputError(
                    f"{where(i)}: unknown value {_shorten(repr(value))} (the model knows {shown})"
                )
    out = np.empty(len(items), dtype=object)
    out[:] = [np.nan if missing[i] else v for i, v in enumerate(items)]
    return out


def _member(value: Any, known: set[Any]) -> bool:
    try:
        return value in known
    except TypeError:  # unhashable (a list, a dict)
        return False


def _missing(values: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    if values.dtype.kind == "f":
        nan: npt.NDArray[np.bool_] = np.isnan(values)
        return nan
    if values.dtype.kind in "biuU":
        return np.zeros(len(values), dtype=bool)
    items = values.tolist()
    if set(map(type, items)) <= _NEVER_MISSING:
        return np.zeros(len(items), dtype=bool)
    return np.fromiter((is_missing(v) for v in items), bool, len(items))


def _with_nan(values: npt.NDArray[Any], missing: npt.NDArray[np.bool_]) -> npt.NDArray[Any]:
    out = values.astype(object)
    out[missing] = np.nan
    return out


def _numbers(
    column: Column, values: npt.NDArray[Any], where: Callable[[int], str], max_abs: float
) -> npt.NDArray[Any]:
    kind = values.dtype.kind
    if kind in "iuf":
        numbers = values.astype(np.float64)
    elif kind == "b":
        raise InvalidInputError(f"{where(0)}: expected a finite number, got {values[0]!r} (bool)")
    else:
        numbers = _walk_numbers(column, values, where, max_abs)
    magnitude = np.abs(numbers)
    if not magnitude.max() <= max_abs:
        bad = ~(magnitude <= max_abs)
        nan = np.isnan(numbers)
        if column.nullable:
            bad &= ~nan
        if bad.any():
            i = int(np.argmax(bad))
            if nan[i]:
                raise InvalidInputError(f"{where(i)}: a missing value, and the column allows none")
            _to_float(float(numbers[i]), where(i), max_abs)  # raises, naming the problem
    if column.type == "integer":
        return _whole(values, numbers, where)
    return numbers


def _whole(
    values: npt.NDArray[Any], numbers: npt.NDArray[np.float64], where: Callable[[int], str]
) -> npt.NDArray[Any]:
    """An integer column's checked numbers: int64 when none is missing, else float64."""
    with np.errstate(invalid="ignore"):
        fractional = np.isfinite(numbers) & (numbers != np.round(numbers))
    if fractional.any():
        i = int(np.argmax(fractional))
        raise InvalidInputError(f"{where(i)}: expected a whole number, got {float(numbers[i])!r}")
    if values.dtype.kind in "iu":
        return values.astype(np.int64)
    if not np.isnan(numbers).any() and np.abs(numbers).max() < 2.0**63:
        return numbers.astype(np.int64)
    return numbers


def _walk_numbers(
    column: Column, values: npt.NDArray[Any], where: Callable[[int], str], max_abs: float
) -> npt.NDArray[np.float64]:
    """Object values: numbers, and missing values where the column allows them.

    Plain ints and floats (JSON's numbers) convert in bulk; anything else is walked one by
    one, so the first culprit is named.
    """
    items = values.tolist()
    types = set(map(type, items))
    if types <= _PLAIN_NUMBERS and (column.nullable or type(None) not in types):
        try:
            return np.array([np.nan if v is None else v for v in items], dtype=np.float64)
        except OverflowError:  # an int beyond float64: the walk names it
            pass
    numbers = np.empty(len(items), dtype=np.float64)
    for i, value in enumerate(items):
        if is_missing(value):
            if not column.nullable:
                raise InvalidInputError(f"{where(i)}: a missing value, and the column allows none")
            numbers[i] = np.nan
        else:
            numbers[i] = _to_float(value, where(i), max_abs)
    return numbers


def to_frame(columns: Columns, schema: Schema, *, max_abs: float) -> Any:
    """The checked columns as a DataFrame with the training dtypes and the input's index."""
    import pandas  # type: ignore[import-untyped]  # noqa: PLC0415 - only frame models need it

    data: dict[str, Any] = {}
    for column, values in zip(schema.columns, columns.values, strict=True):
        checked = check_column(column, values, columns.row_label, max_abs)
        if column.type == "category":
            dtype = _category_dtype(column.categories or ())
            codes = {value: k for k, value in enumerate(dtype.categories.tolist())}
            # from_codes: the values are known members (checked), no inference needed.
            checked = pandas.Categorical.from_codes(
                np.fromiter((codes.get(v, -1) for v in checked.tolist()), np.int64, len(checked)),
                dtype=dtype,
            )
        data[column.name] = checked
    index = columns.index if columns.index is not None else pandas.RangeIndex(columns.n_rows)
    return pandas.DataFrame(data, index=index, copy=False)


@functools.lru_cache(maxsize=256)
def _category_dtype(categories: tuple[Any, ...]) -> Any:
    import pandas  # noqa: PLC0415 - only models fitted on DataFrames need it

    return pandas.CategoricalDtype(list(categories))


def to_numbers(columns: Columns, schema: Schema, spec: NumberSpec) -> npt.NDArray[np.float64]:
    """The checked columns of an all-numeric schema as one C-contiguous float64 matrix."""
    matrix = np.empty((columns.n_rows, len(schema)), dtype=np.float64)
    for j, (column, values) in enumerate(zip(schema.columns, columns.values, strict=True)):
        matrix[:, j] = check_column(column, values, columns.row_label, spec.max_abs)
    return matrix
