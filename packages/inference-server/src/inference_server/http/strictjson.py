"""Strict JSON decoding of request bodies, and fast encoding of answers.

Decoding must reject duplicate keys and ``NaN``/``Infinity`` and give the same value (or the
same error) for every body. The standard library can (``object_pairs_hook``,
``parse_constant``) but is slow on batches; orjson is fast but keeps the last duplicate key
silently. So :func:`decode` uses orjson's result only when it provably equals the strict
decoder's (:func:`decode_if_proven`) and otherwise decodes again with the strict decoder, which
then makes every error message. Looking for duplicate keys needs only the objects, so when
the proof fails the strict decoder first reads a skeleton of the body with its number arrays
emptied. When raw byte counts cannot settle the proof, the body's bytes are counted outside
strings into an :class:`Outline`, which callers may also ask for (what kinds of values a
body holds). Encoding uses orjson. Nothing here knows HTTP: reading
bodies is :mod:`~inference_server.http.bodies`, statuses are :mod:`inference_server.errors`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson


class InvalidJSONError(ValueError):
    """A body that is not strict JSON (answered 400; the message says what is wrong)."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON: non-finite numbers are not accepted")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key!r}")
            seen.add(key)
    return obj


_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_constant=_reject_constant)


#: orjson's value is used only up to this nesting depth: the strict decoder raises
#: RecursionError somewhere below ~950 levels (it depends on the caller's stack), and those
#: bodies must keep getting its answer.
_MAX_FAST_DEPTH = 256
#: A string literal. Possessive (``++``, ``*+``): a run of plain bytes is one step and nothing
#: is backtracked, where ``(?:[^"\\]|\\.)*`` took a costly step per byte (long strings in
#: bench/heavy_bodies.py). The two branches start with different bytes, so what matches is
#: unchanged.
_STRING_LITERAL = rb'"(?:[^"\\]++|\\.)*+"'
_STRING = re.compile(_STRING_LITERAL)
#: A string (kept as it is), or an array holding only numbers (emptied to ``[]``). Scanning
#: left to right, a ``[`` inside a string is always consumed by the string it belongs to.
_STRING_OR_NUMBERS = re.compile(rb"(" + _STRING_LITERAL + rb")|(\[)[-+.eE0-9\s,]*(\])")
#: Deleting every other byte leaves what an :class:`Outline` counts, and brackets.
_NOT_MARK = bytes(b for b in range(256) if b not in b"[]{}:tfn")
#: +1 for an opening bracket or brace, -1 for a closing one, by byte value.
_DEPTH_STEP = np.zeros(256, np.int8)
_DEPTH_STEP[list(b"[{")] = 1
_DEPTH_STEP[list(b"]}")] = -1
#: Digits -> "0", everything else -> " ": a run of 19 zeros is a number orjson may have
#: turned into a float (integers outside int64/uint64), where the stdlib keeps an ``int``.
_DIGITS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_DIGITS = b"0" * 19


def without_strings(data: bytes) -> bytes:
    """``data`` with every JSON string literal removed (exact for valid JSON)."""
    return _STRING.sub(b"", data)


@dataclass(frozen=True, slots=True)
class Outline:
    """What a valid JSON text holds outside its strings, counted from its bytes.

    Attributes:
        strings: String literals, object keys included.
        objects: Objects (``{``).
        arrays: Arrays (``[``).
        keys: Object keys (``:``).
        literals: ``true``, ``false`` and ``null`` (outside strings, the letters t, f and n
            appear only in those, once each).
    """

    strings: int
    objects: int
    arrays: int
    keys: int
    literals: int
    #: Only the bytes counted above and brackets: what the depth is computed from.
    marks: bytes

    @classmethod
    def of(cls, data: bytes) -> Outline:
        """Count ``data`` (a valid JSON text; two passes of C over its bytes)."""
        structure, strings = _STRING.subn(b"", data)
        marks = structure.translate(None, _NOT_MARK)
        return cls(
            strings,
            marks.count(b"{"),
            marks.count(b"["),
            marks.count(b":"),
            marks.count(b"t") + marks.count(b"f") + marks.count(b"n"),
            marks,
        )

    def depth(self) -> int:
        """How deeply the text's arrays and objects nest."""
        if not self.marks:
            return 0
        steps = _DEPTH_STEP[np.frombuffer(self.marks, np.uint8)]
        return int(np.cumsum(steps, dtype=np.int32).max())


class Decoded:
    """A decoded JSON text, and its :class:`Outline` (counted when first asked for)."""

    __slots__ = ("_data", "_outline", "value")

    def __init__(self, value: Any, data: bytes, outline: Outline | None = None) -> None:
        """``value`` decoded from ``data``; ``outline`` if already counted."""
        self.value = value
        self._data = data
        self._outline = outline

    @property
    def outline(self) -> Outline:
        """The text's :class:`Outline`."""
        if self._outline is None:
            self._outline = Outline.of(self._data)
        return self._outline


def max_depth(data: bytes) -> int:
    """Nesting depth of a valid JSON document (strings removed, then brackets counted)."""
    return Outline.of(data).depth()


def skeleton(data: bytes) -> bytes:
    """``data`` with every array that holds only numbers emptied (exact for valid JSON).

    It has the same objects, keys and strings in the same order, so a strict decoder finds the
    same duplicate key in it, without converting any of the numbers.
    """
    return _STRING_OR_NUMBERS.sub(rb"\1\2\3", data)


def decode_if_proven(data: bytes) -> Decoded | None:
    """What orjson decodes from ``data`` if provably equal to the strict result, else None.

    Raises:
        InvalidJSONError: A duplicate key (found in the :func:`skeleton`).

    orjson itself rejects what the strict decoder rejects for NaN/Infinity, invalid UTF-8,
    lone surrogates, a BOM and numbers that overflow to infinity (all go to the strict
    decoder, which also accepts some of them: it then decides). The remaining differences:

    - Duplicate keys (orjson keeps the last). Every decoded object comes from a distinct
      ``{`` byte and every key from a distinct ``:`` byte, so when the decoded objects and
      keys add up to the body's ``{`` and ``:`` bytes, none was dropped. Inside strings those
      bytes only make the raw counts too high; the :class:`Outline` counts them exactly
      (outside strings), and when even those do not add up, the strict decoder reads the
      skeleton, which holds every key: a duplicate there is the strict decoder's own error.
    - Integers beyond 64 bits (orjson makes them floats): any run of 19+ digits falls back.
    - Depth: see ``_MAX_FAST_DEPTH``.
    """
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if _LONG_DIGITS in data.translate(_DIGITS):
        return None
    braces = data.count(b"{")
    outline = None
    if braces + data.count(b"[") > _MAX_FAST_DEPTH:
        outline = Outline.of(data)
        if outline.objects + outline.arrays > _MAX_FAST_DEPTH and outline.depth() > _MAX_FAST_DEPTH:
            return None
    objects = keys = 0
    stack = [value]
    while stack and objects < braces:
        item = stack.pop()
        if type(item) is dict:
            objects += 1
            keys += len(item)
            stack.extend(v for v in item.values() if type(v) is dict or type(v) is list)
        elif type(item) is list:
            stack.extend(v for v in item if type(v) is dict or type(v) is list)
    if objects == braces and keys == data.count(b":"):
        return Decoded(value, data, outline)
    # Fewer than the raw counts: every object was visited, so these are the decoded totals.
    outline = outline or Outline.of(data)
    if objects != outline.objects or keys != outline.keys:
        _strict_decode(skeleton(data))
    return Decoded(value, data, outline)


def decode(data: bytes) -> Decoded:
    """Decode UTF-8 JSON strictly, and outline it.

    Raises:
        InvalidJSONError: Not UTF-8, not JSON, a duplicate key, NaN/Infinity, an integer too long
            to convert, or nesting too deep to parse.
    """
    decoded = decode_if_proven(data)
    if decoded is not None:
        return decoded
    return Decoded(_strict_decode(data), data)


def _strict_decode(data: bytes) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidJSONError(f"request body is not valid UTF-8: {error.reason}") from None
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as error:
        raise InvalidJSONError(
            f"request body is not valid JSON: {error.msg}"
            f" (line {error.lineno}, column {error.colno})"
        ) from None
    except RecursionError:
        raise InvalidJSONError("request body is nested too deeply") from None
    except ValueError as error:  # duplicate keys, constants, int digit limit
        raise InvalidJSONError(f"request body is not valid JSON: {error}") from None


def json_type(value: Any) -> str:
    """Name a decoded JSON value's type the way JSON does, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def dumps(obj: Any) -> bytes:
    """Encode with orjson; fall back to ASCII-escaped stdlib JSON for unencodable strings.

    NumPy arrays become JSON arrays, float32 values in their shortest form (0.1).
    """
    try:
        return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)
    except orjson.JSONEncodeError:
        return json.dumps(
            obj, allow_nan=False, separators=(",", ":"), default=_numpy_to_list
        ).encode()


def _numpy_to_list(value: Any) -> Any:
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
