"""Reading rows for the command line: CSV files (standard library) and JSON lines.

CSV cells are text: for training, each column's type is inferred from its cells (whole
numbers, numbers, ``true``/``false``, else strings; an empty cell is a missing value); for
prediction, each cell is read as its schema column's type. Every error is a
:class:`TableError` naming the file, line and column.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from iris_model.schema import Column, Schema

_MAX_SHOWN = 40
_BOOLEANS = {"true": True, "false": False}


class TableError(ValueError):
    """An input file cannot be read as rows (the message names file, line and column)."""


def name(path: str) -> str:
    """How messages name ``path`` (``-`` is stdin)."""
    return "stdin" if path == "-" else path


def read_text(path: str) -> str:
    """The text of ``path`` (``-``: stdin), or a :class:`TableError` saying why not."""
    try:
        return sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise TableError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise TableError(f"{path}: is a directory, not a CSV file") from None
    except UnicodeDecodeError:
        raise TableError(f"{path}: not UTF-8 text") from None


def read_csv(path: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Return the header and (line number, cells) of each record; refuse ragged rows."""
    reader = csv.reader(io.StringIO(read_text(path)))
    try:
        header = next(reader, None)
        if not header:
            raise TableError(f"{name(path)}: empty file (expected a header row)")
        header = [column.strip() for column in header]
        duplicates = sorted({column for column in header if header.count(column) > 1})
        if duplicates:
            raise TableError(f"{name(path)}: duplicate column {duplicates[0]!r}")
        return header, list(_records(path, reader, len(header)))
    except csv.Error as exc:
        raise TableError(f"{name(path)} line {reader.line_num}: malformed CSV ({exc})") from None


def _records(path: str, reader: Any, width: int) -> Iterator[tuple[int, list[str]]]:
    for record in reader:
        if not record:
            continue  # blank lines
        if len(record) != width:
            raise TableError(
                f"{name(path)} line {reader.line_num}: {len(record)} values for {width} columns"
            )
        yield reader.line_num, record


def read_json_lines(path: str) -> list[tuple[int, dict[str, Any]]]:
    """One JSON object per non-blank line, with its line number."""
    rows = []
    for line, text in enumerate(read_text(path).splitlines(), start=1):
        if not text.strip():
            continue
        try:
            row = json.loads(text, parse_constant=_no_constant)
        except ValueError as exc:
            raise TableError(f"{name(path)} line {line}: not JSON ({exc})") from None
        if not isinstance(row, dict):
            raise TableError(f"{name(path)} line {line}: expected an object of column values")
        rows.append((line, row))
    return rows


def _no_constant(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


# ------------------------------------------------------------------------ training
def infer_columns(header: list[str], records: list[tuple[int, list[str]]]) -> dict[str, list[Any]]:
    """Each CSV column's values, typed by what all of its cells are (empty: None).

    Whole numbers, else numbers, else true/false, else strings.
    """
    columns: dict[str, list[Any]] = {}
    for k, column in enumerate(header):
        cells = [record[k].strip() for _, record in records]
        columns[column] = _typed(cells)
    return columns


def _typed(cells: list[str]) -> list[Any]:
    if any(cells):
        for parse in (_whole, _finite, _boolean):
            try:
                return [parse(cell) if cell else None for cell in cells]
            except (ValueError, KeyError):
                continue
    return [cell or None for cell in cells]


def _whole(text: str) -> int:
    return int(text)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _boolean(text: str) -> bool:
    return _BOOLEANS[text.lower()]  # a KeyError: not a boolean


# ---------------------------------------------------------------------- prediction
def typed_rows(
    path: str, header: list[str], records: list[tuple[int, list[str]]], schema: Schema
) -> list[dict[str, Any]]:
    """CSV records as row dicts, each cell read as its schema column's type."""
    known = [schema[column] if schema.position(column) is not None else None for column in header]
    return [
        {
            column: cell_value(path, line, spec, cell) if spec is not None else cell
            for column, spec, cell in zip(header, known, record, strict=True)
        }
        for line, record in records
    ]


def cell_value(path: str, line: int | None, column: Column, text: str) -> Any:
    """One cell as ``column``'s type: numbers, whole numbers, true/false; empty: None."""
    where = f"{name(path)}{'' if line is None else f' line {line}'}, column {column.name!r}"
    text = text.strip()
    if not text:
        return None
    if column.numeric:
        try:
            value = float(text)
        except ValueError:
            raise TableError(f"{where}: not a number: {_shorten(text)!r}") from None
        if not math.isfinite(value):
            raise TableError(f"{where}: not a finite number: {text!r}")
        return int(value) if column.type == "integer" and value.is_integer() else value
    if column.type == "boolean":
        if text.lower() not in _BOOLEANS:
            raise TableError(f"{where}: expected true or false, got {_shorten(text)!r}")
        return _BOOLEANS[text.lower()]
    if column.categories is not None:  # categories may be numbers: match their text
        return next((c for c in column.categories if str(c) == text), text)
    return text


def _shorten(text: str) -> str:
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"
