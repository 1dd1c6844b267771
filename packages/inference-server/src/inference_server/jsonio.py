"""Strict JSON in, fast JSON out.

Decoding must reject duplicate keys and ``NaN``/``Infinity`` and give the same value (or the
same error) for every body. The standard library can (``object_pairs_hook``,
``parse_constant``) but is slow on batches: 2.1 ms for a 22 KB 1,000-row body on the loaded
dev box, vs 0.34 ms for orjson. orjson keeps the last duplicate silently, so :func:`loads`
uses orjson's result only when it provably equals the strict decoder's (see
:func:`loads_if_proven`) and otherwise decodes again with the strict decoder, which then makes
every error message exactly as before.

Encoding uses orjson: 0.2 us vs 3.9 us per single-row response, 22 us vs 170 us per
1000-row batch. Error bodies go through ``json.dumps`` (ASCII-escaped), so a message that
quotes client text with lone surrogates still serialises.
"""

from __future__ import annotations

import json
import re
from typing import IO, Any

import numpy as np
import orjson
from flask import Request, Response
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge, UnsupportedMediaType

JSON_MIMETYPE = "application/json"
_READ_CHUNK = 64 * 1024


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
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
#: Digits -> "0", everything else -> " ": a run of 19 zeros is a number orjson may have
#: turned into a float (integers outside int64/uint64), where the stdlib keeps an ``int``.
_DIGITS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_DIGITS = b"0" * 19


def _max_depth(data: bytes) -> int:
    """Nesting depth of a valid JSON document (strings removed, then brackets counted)."""
    brackets = np.frombuffer(_STRING.sub(b"", data).translate(None, _NOT_BRACKET), np.uint8)
    if not brackets.size:
        return 0
    steps = np.where((brackets == ord("[")) | (brackets == ord("{")), 1, -1)
    return int(np.cumsum(steps).max())


def loads_if_proven(data: bytes) -> Any:
    """What orjson decodes from ``data`` if provably equal to the strict result, else MISS.

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
    if braces + data.count(b"[") > _MAX_FAST_DEPTH and _max_depth(data) > _MAX_FAST_DEPTH:
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
    return MISS


def loads(data: bytes) -> Any:
    """Decode UTF-8 JSON strictly.

    Raises:
        BadRequest: Not UTF-8, not JSON, a duplicate key, NaN/Infinity, an integer too long
            to convert, or nesting too deep to parse.
    """
    value = loads_if_proven(data)
    if value is not MISS:
        return value
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadRequest(f"request body is not valid UTF-8: {error.reason}") from None
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as error:
        raise BadRequest(
            f"request body is not valid JSON: {error.msg}"
            f" (line {error.lineno}, column {error.colno})"
        ) from None
    except RecursionError:
        raise BadRequest("request body is nested too deeply") from None
    except ValueError as error:  # duplicate keys, constants, int digit limit
        raise BadRequest(f"request body is not valid JSON: {error}") from None


def check_content_type(request: Request) -> None:
    """Accept ``application/json`` (any parameters) or no Content-Type at all.

    tritonclient sends Open Inference Protocol requests without a Content-Type, so a missing
    header means JSON; a different media type is answered with 415.
    """
    if not request.environ.get("CONTENT_TYPE"):  # absent (or empty): JSON
        return
    if request.mimetype != JSON_MIMETYPE:
        raise UnsupportedMediaType(
            f"Content-Type must be {JSON_MIMETYPE}, got {request.mimetype!r}"
        )
    charset = request.mimetype_params.get("charset")
    if charset is not None and charset.lower().replace("-", "") != "utf8":
        raise UnsupportedMediaType(f"JSON bodies must be UTF-8, got charset {charset!r}")


def read_exactly(stream: IO[bytes], length: int) -> bytes:
    """``length`` bytes of ``stream``, or fewer if it ends first (a raw stream may read short)."""
    body = stream.read(length)
    if len(body) == length:
        return body
    chunks = [body]
    received = len(body)
    while body and received < length:
        body = stream.read(length - received)
        chunks.append(body)
        received += len(body)
    return b"".join(chunks)


def read_body(request: Request, limit: int) -> bytes:
    """Read at most ``limit`` bytes of body, also when it is chunked (no Content-Length).

    Raises:
        RequestEntityTooLarge: The body is longer than ``limit``.
    """
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge(f"request body is larger than the limit of {limit} bytes")
    stream = request.stream
    if request.content_length is not None:
        # One exact read (checked against the limit above; Werkzeug also caps the stream at
        # Content-Length): 64 KiB chunked reads allocated and zeroed a 64 KiB buffer per call.
        return read_exactly(stream, request.content_length)
    chunks: list[bytes] = []
    received = 0
    while received <= limit:
        chunk = stream.read(min(_READ_CHUNK, limit + 1 - received))
        if not chunk:
            break
        chunks.append(chunk)
        received += len(chunk)
    if received > limit:
        raise RequestEntityTooLarge(f"request body is larger than the limit of {limit} bytes")
    return b"".join(chunks)


def read_json_object(request: Request, limit: int) -> dict[str, Any]:
    """Check the Content-Type, read a bounded body and decode it as a JSON object.

    Raises:
        UnsupportedMediaType: A Content-Type other than JSON.
        RequestEntityTooLarge: A body over ``limit`` bytes.
        BadRequest: Anything that is not a strict JSON object.
    """
    check_content_type(request)
    body = loads(read_body(request, limit))
    if not isinstance(body, dict):
        raise BadRequest(f"request body must be a JSON object, got {json_type(body)}")
    return body


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


def error_bytes(message: str, details: list[str] | None = None) -> bytes:
    """The one error body of the service: ``{"error": message}`` plus optional ``details``."""
    body: dict[str, Any] = {"error": message}
    if details:
        body["details"] = details
    return json.dumps(body, separators=(",", ":")).encode()


def json_response(obj: Any, status: int = 200) -> Response:
    """A JSON response encoded with :func:`dumps`."""
    return Response(dumps(obj), status=status, mimetype=JSON_MIMETYPE)
