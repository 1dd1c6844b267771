"""Strict JSON decoding of request bodies, and fast encoding of answers.

Decoding must reject duplicate keys and ``NaN``/``Infinity`` and give the same value (or the
same error) for every body. The standard library can (``object_pairs_hook``,
``parse_constant``) but is slow on batches; orjson is fast but keeps the last duplicate key
silently. So :func:`loads` uses orjson's result only when it provably equals the strict
decoder's (:func:`loads_if_proven`) and otherwise decodes again with the strict decoder, which
then makes every error message. Encoding uses orjson. Nothing here knows HTTP: reading bodies
is :mod:`inference_server.bodies`, statuses are :mod:`inference_server.errors`.
"""

from __future__ import annotations

import json
import re
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


#: Marker: orjson's result cannot be used, decode with the strict decoder.
MISS: Any = object()
#: orjson's value is used only up to this nesting depth: the strict decoder raises
#: RecursionError somewhere below ~950 levels (it depends on the caller's stack), and those
#: bodies must keep getting its answer.
_MAX_FAST_DEPTH = 256
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
#: A string (kept as it is), or an array holding only numbers (emptied to ``[]``). Scanning
#: left to right, a ``[`` inside a string is always consumed by the string it belongs to.
_STRING_OR_NUMBERS = re.compile(rb'("(?:[^"\\]|\\.)*")|(\[)[-+.eE0-9\s,]*(\])')
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
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


def max_depth(data: bytes) -> int:
    """Nesting depth of a valid JSON document (strings removed, then brackets counted)."""
    brackets = np.frombuffer(without_strings(data).translate(None, _NOT_BRACKET), np.uint8)
    if not brackets.size:
        return 0
    return int(np.cumsum(_DEPTH_STEP[brackets], dtype=np.int32).max())


def skeleton(data: bytes) -> bytes:
    """``data`` with every array that holds only numbers emptied (exact for valid JSON).

    It has the same objects, keys and strings in the same order, so a strict decoder finds the
    same duplicate key in it, without converting any of the numbers.
    """
    return _STRING_OR_NUMBERS.sub(rb"\1\2\3", data)


def loads_if_proven(data: bytes) -> Any:
    """What orjson decodes from ``data`` if provably equal to the strict result, else MISS.

    Raises:
        InvalidJSONError: A duplicate key (found in the :func:`skeleton`).

    orjson itself rejects what the strict decoder rejects for NaN/Infinity, invalid UTF-8,
    lone surrogates, a BOM and numbers that overflow to infinity (all go to the strict
    decoder, which also accepts some of them: it then decides). The remaining differences:

    - Duplicate keys (orjson keeps the last). Every decoded object comes from a distinct
      ``{`` byte and every decoded key from a distinct ``:`` byte. Once as many objects as
      ``{`` bytes are found, none was dropped with a duplicate; if their keys then add up to
      the number of ``:`` bytes, no key was dropped either. ``{`` or ``:`` inside strings
      only make the proof fail (a fallback), never pass wrongly.
    - Integers beyond 64 bits (orjson makes them floats): any run of 19+ digits falls back.
    - Depth: see ``_MAX_FAST_DEPTH``.
    """
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return MISS
    if _LONG_DIGITS in data.translate(_DIGITS):
        return MISS
    braces = data.count(b"{")
    if braces + data.count(b"[") > _MAX_FAST_DEPTH and max_depth(data) > _MAX_FAST_DEPTH:
        return MISS
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
        return value
    _strict_decode(skeleton(data))
    return value


def loads(data: bytes) -> Any:
    """Decode UTF-8 JSON strictly.

    Raises:
        InvalidJSONError: Not UTF-8, not JSON, a duplicate key, NaN/Infinity, an integer too long
            to convert, or nesting too deep to parse.
    """
    value = loads_if_proven(data)
    if value is not MISS:
        return value
    return _strict_decode(data)


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
    """Encode with orjson; fall back to ASCII-escaped stdlib JSON for unencodable strings."""
    try:
        return orjson.dumps(obj)
    except orjson.JSONEncodeError:
        return json.dumps(obj, allow_nan=False, separators=(",", ":")).encode()
