"""The data contract a model owns: its columns, each with a type and whether it may be missing.

A :class:`Schema` is inferred by :func:`~iris_model.train` from the data it is given (a
DataFrame's dtypes, or ``feature_names`` with a NumPy array), stored in the manifest
(``model.json``) and checked on every call: columns are matched by name, a value of the
wrong type is refused naming its row and column, a missing value passes only where the
column allows it. Like MLflow's model signature, but with the types a scikit-learn
pipeline tells apart:

``number``
    a real number (float64); ``integer``: a whole number (int64); ``boolean``: True/False;
``string``
    text (``str``, NumPy and pandas strings); ``category``: one of the column's known
    values (a pandas ``category`` column).

pandas is never imported here (a frame can only exist if the caller imported pandas).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, cast, get_args

import numpy as np

from iris_model.errors import IrisModelError

ColumnType = Literal["number", "integer", "boolean", "string", "category"]
COLUMN_TYPES: Final[tuple[str, ...]] = get_args(ColumnType)
NUMERIC_TYPES: Final = frozenset({"number", "integer"})
_KEYS: Final = frozenset({"name", "type", "nullable", "categories"})


class SchemaError(IrisModelError, ValueError):
    """A schema (given, inferred or read from a manifest) is not one this library can use.

    Callers turn it into their own domain error (:class:`~iris_model.TrainingError` at
    training, :class:`~iris_model.ModelLoadError` at load).
    """


@dataclass(frozen=True)
class Column:
    """One input column of a model.

    Attributes:
        name: The column's name (a DataFrame's integer label ``0`` is the name ``"0"``).
        type: One of ``number``, ``integer``, ``boolean``, ``string``, ``category``.
        nullable: Whether a missing value (None, NaN, pandas NA) is accepted.
        categories: The known values of a ``category`` column; of a ``string`` column only
            when the estimator refuses values it has not seen (then they are refused here,
            by name, before the estimator is called). Otherwise None.
    """

    name: str
    type: ColumnType
    nullable: bool = False
    categories: tuple[Any, ...] | None = None

    @property
    def numeric(self) -> bool:
        """Whether the column's values are numbers (``number`` or ``integer``)."""
        return self.type in NUMERIC_TYPES

    def as_dict(self) -> dict[str, Any]:
        """The column as plain JSON data (the manifest's form)."""
        data: dict[str, Any] = {"name": self.name, "type": self.type, "nullable": self.nullable}
        if self.categories is not None:
            data["categories"] = list(self.categories)
        return data

    def __str__(self) -> str:
        text = f"{self.name}: {self.type}" + (" (nullable)" if self.nullable else "")
        if self.categories is not None:
            shown = ", ".join(map(repr, self.categories[:6]))
            more = len(self.categories) - 6
            text += f" [{shown}{f', ... {more} more' if more > 0 else ''}]"
        return text


@dataclass(frozen=True)
class Schema:
    """The ordered columns a model takes. Build one with :meth:`infer` or :meth:`numeric`."""

    columns: tuple[Column, ...]
    _at: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [column.name for column in self.columns]
        if not names:
            raise SchemaError("a schema needs at least one column")
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise SchemaError(f"duplicate column {duplicates[0]!r} in the schema")
        object.__setattr__(self, "_at", {name: k for k, name in enumerate(names)})

    @property
    def names(self) -> tuple[str, ...]:
        """The column names, in the order the estimator takes them."""
        return tuple(column.name for column in self.columns)

    @property
    def all_numeric(self) -> bool:
        """Whether every column is a number or integer (a float matrix can carry the rows)."""
        return all(column.numeric for column in self.columns)

    @property
    def nullable(self) -> tuple[bool, ...]:
        """Per column, whether it accepts missing values."""
        return tuple(column.nullable for column in self.columns)

    def position(self, name: str) -> int | None:
        """The position of column ``name``, or None."""
        return self._at.get(name)

    def __len__(self) -> int:
        return len(self.columns)

    def __iter__(self) -> Any:
        return iter(self.columns)

    def __getitem__(self, name: str) -> Column:
        return self.columns[self._at[name]]

    # ------------------------------------------------------------------ building
    @classmethod
    def numeric(cls, names: Iterable[str], nullable: Iterable[bool] | None = None) -> Schema:
        """All-``number`` columns (the Iris schema, and that of a model saved before schemas)."""
        names = tuple(names)
        flags = tuple(nullable) if nullable is not None else (False,) * len(names)
        return cls(tuple(Column(n, "number", f) for n, f in zip(names, flags, strict=True)))

    @classmethod
    def infer(cls, frame: Any, *, nullable: Iterable[str] = ()) -> Schema:
        """The schema of a pandas DataFrame: a type per column from its dtype and values.

        Args:
            frame: The training data.
            nullable: Columns that may be missing at prediction although the training data
                has no missing value there (columns with missing values are nullable anyway).

        Raises:
            SchemaError: a column of a type the library does not carry (dates: convert them
                to numbers first), an object column mixing value types, an unknown name in
                ``nullable``.
        """
        declared = set(nullable)
        names = [str(label) for label in frame.columns]
        unknown = sorted(declared - set(names))
        if unknown:
            raise SchemaError(f"nullable names unknown column {unknown[0]!r}")
        columns = []
        for k, name in enumerate(names):
            series = frame.iloc[:, k]
            has_missing = bool(series.isna().any())
            kind, categories = _column_type(name, series)
            columns.append(Column(name, kind, has_missing or name in declared, categories))
        return cls(tuple(columns))

    def with_categories(self, categories: Mapping[str, Sequence[Any]]) -> Schema:
        """A copy whose ``string`` columns named in ``categories`` know those values."""
        return Schema(
            tuple(
                Column(c.name, c.type, c.nullable, tuple(categories[c.name]))
                if c.name in categories
                else c
                for c in self.columns
            )
        )

    # ------------------------------------------------------------------ manifest
    def as_dict(self) -> dict[str, Any]:
        """The schema as plain JSON data (stored in ``model.json`` under ``schema``)."""
        return {"columns": [column.as_dict() for column in self.columns]}

    @classmethod
    def from_dict(cls, data: Any) -> Schema:
        """Read a schema back from :meth:`as_dict`'s form, refusing anything else.

        Raises:
            SchemaError: not a schema (unknown keys or types, a non-boolean ``nullable``,
                categories that are not a list of distinct plain values, ...).
        """
        if not isinstance(data, dict) or set(data) != {"columns"}:
            raise SchemaError('a schema is an object with one key, "columns"')
        items = data["columns"]
        if not isinstance(items, list):
            raise SchemaError('the schema\'s "columns" must be a list')
        columns = []
        for k, item in enumerate(items):
            if not isinstance(item, dict) or not {"name", "type"} <= set(item) <= _KEYS:
                raise SchemaError(f"schema column {k}: expected name, type, nullable, categories")
            name, kind = item["name"], item["type"]
            nullable = item.get("nullable", False)
            categories = item.get("categories")
            if not isinstance(name, str) or kind not in COLUMN_TYPES:
                raise SchemaError(f"schema column {k}: a name and one of {COLUMN_TYPES}")
            if not isinstance(nullable, bool):
                raise SchemaError(f"schema column {name!r}: nullable must be true or false")
            if (kind == "category") != (categories is not None) and kind != "string":
                raise SchemaError(f"schema column {name!r}: only categories carry categories")
            if categories is not None:
                _check_categories(name, categories)
                categories = tuple(categories)
            columns.append(Column(name, cast(ColumnType, kind), nullable, categories))
        return cls(tuple(columns))

    def __str__(self) -> str:
        return "\n".join(str(column) for column in self.columns)


def _check_categories(name: str, categories: Any) -> None:
    plain = (str, int, float, bool)
    if (
        not isinstance(categories, list | tuple)
        or not all(isinstance(v, plain) for v in categories)
        or any(isinstance(v, float) and not math.isfinite(v) for v in categories)
        or len(set(categories)) != len(categories)
    ):
        raise SchemaError(f"schema column {name!r}: categories must be distinct plain values")


def _column_type(name: str, series: Any) -> tuple[ColumnType, tuple[Any, ...] | None]:
    """The type of one training column, from its dtype (object columns: from its values)."""
    dtype = series.dtype
    kind = getattr(dtype, "kind", "O")
    if str(dtype) == "category":
        values = tuple(_plain(v) for v in dtype.categories.tolist())
        _check_categories(name, list(values))
        return "category", values
    if kind == "b" or str(dtype) == "boolean":
        return "boolean", None
    if kind in "iu":
        return "integer", None
    if kind == "f":
        return "number", None
    if kind in "OUT" or str(dtype) in ("str", "string"):
        return _object_type(name, {type(v) for v in series.dropna().tolist()}), None
    raise SchemaError(
        f"column {name!r} has dtype {dtype}, which a model cannot take as is; convert it to"
        " numbers (e.g. epoch seconds) or strings first"
    )


def _object_type(name: str, types: set[type]) -> ColumnType:
    """The type of an object column from the types of its values (all alike, or refused)."""
    if all(issubclass(t, str) for t in types):
        return "string"
    if all(issubclass(t, bool | np.bool_) for t in types):
        return "boolean"
    if all(issubclass(t, int | float | np.number) and not issubclass(t, bool) for t in types):
        return "number"
    shown = sorted(t.__name__ for t in types)
    raise SchemaError(f"column {name!r} mixes value types {shown}; give it one type")


def _plain(value: Any) -> Any:
    """A NumPy scalar as the Python value JSON stores."""
    return value.item() if isinstance(value, np.generic) else value
