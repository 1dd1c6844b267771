"""Plain number batches (``{"instances": [[n numbers], ...]}``) decoded straight into a matrix.

Most batch bodies are exactly that shape. Decoded the general way, every number becomes a
Python float in a list per row (orjson), then goes into the matrix one at a time, then is
freed: three passes over Python objects that cost most of a 1,000-row request. simdjson
parses and validates the whole text in C and copies the numbers of an array of arrays into
one buffer, with no Python object per number.

It flattens nested arrays and keeps duplicate keys, so :func:`plain_batch` takes its result
only when the body's bytes prove the shape (see there); any other body returns None and
takes the general path, which makes every error message. A hypothesis test over generated
plain and near-miss bodies holds the two paths to the same call whenever this one accepts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import simdjson  # type: ignore[import-untyped,import-not-found,unused-ignore]

from inference_server.http.strictjson import without_strings

#: Deleting every other byte leaves the brackets, braces and commas outside strings.
_NOT_FRAME = bytes(b for b in range(256) if b not in b"[]{},")
_JSON_WHITESPACE = b" \t\r\n"


def plain_batch(
    body: bytes, n_features: int, max_rows: int, flags: frozenset[str] = frozenset()
) -> tuple[npt.NDArray[np.float64], Mapping[str, bool]] | None:
    """``body``'s ``instances`` as a float64 matrix, and its boolean ``flags``; else None.

    Taken only when all of these hold, each checked in C or on a handful of values: outside
    strings, the text holds one ``{``, and one ``[`` more than it holds arrays of exactly
    ``n_features - 1`` commas (so every array but one is a flat row of ``n_features``
    values), 1 to ``max_rows`` of them; the text is valid JSON (simdjson) without a
    byte-order mark; its one object has the keys ``instances`` (holding those rows) and some
    of ``flags``, each once, flags true or false; every value is a number (simdjson refuses
    anything else); the library checks their range and finiteness, as for any matrix. The
    byte counts come first: they cost the least on bodies that fail them.
    """
    if n_features < 1 or b'"instances"' not in body:  # single rows and others: at once
        return None
    n_rows = _flat_rows(body, n_features)
    if not 0 < n_rows <= max_rows or not body.lstrip(_JSON_WHITESPACE).startswith(b"{"):
        return None  # (simdjson would skip a byte-order mark)
    try:
        document: Any = simdjson.Parser().parse(body)
    except (ValueError, RuntimeError):  # invalid JSON or UTF-8, a number out of range
        return None
    values = _flag_values(document, flags)
    matrix = None if values is None else _matrix(document["instances"], n_rows, n_features)
    return None if matrix is None or values is None else (matrix, values)


def _matrix(rows: Any, n_rows: int, n_features: int) -> npt.NDArray[np.float64] | None:
    """``rows`` (simdjson's array of ``n_rows`` flat rows) as a matrix of numbers."""
    if not isinstance(rows, simdjson.Array) or len(rows) != n_rows:
        return None
    try:
        flat = np.frombuffer(rows.as_buffer(of_type="d"), np.float64)
    except TypeError:  # a string, true/false or null among the values
        return None
    if flat.size != n_rows * n_features:
        return None
    return flat.reshape(n_rows, n_features)


def _flat_rows(body: bytes, n_features: int) -> int:
    """How many flat rows the text outside strings holds (0 unless it is nothing else).

    Nothing else: one object, and one array more than the rows (the one holding them).
    """
    frame = without_strings(body).translate(None, _NOT_FRAME)
    n_rows = frame.count(b"[" + b"," * (n_features - 1) + b"]")
    if frame.count(b"{") != 1 or frame.count(b"[") != n_rows + 1:
        return 0
    return n_rows


def _flag_values(document: Any, flags: frozenset[str]) -> dict[str, bool] | None:
    """The flags of an object holding ``instances`` and some of ``flags``, each once."""
    if not isinstance(document, simdjson.Object):
        return None
    keys = list(document.keys())
    if "instances" not in keys or len(set(keys)) != len(keys):
        return None
    if not set(keys) <= flags | {"instances"}:
        return None
    values: dict[str, bool] = {}
    for key in keys:
        if key != "instances":
            value = document[key]
            if type(value) is not bool:
                return None
            values[key] = value
    return values
