"""Strict JSON in, fast JSON out.

Decoding uses the standard library, because only ``object_pairs_hook`` can reject duplicate
keys and ``parse_constant`` can reject ``NaN``/``Infinity`` (orjson silently keeps the last
duplicate). Measured on the 2-core dev box: 2.9 us per single-row body, noise next to Flask.
Encoding uses orjson: 0.2 us vs 3.9 us per single-row response, 22 us vs 170 us per
1000-row batch. Error bodies go through ``json.dumps`` (ASCII-escaped), so a message that
quotes client text with lone surrogates still serialises.
"""

from __future__ import annotations

import json
from typing import Any

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


def loads(data: bytes) -> Any:
    """Decode UTF-8 JSON strictly.

    Raises:
        BadRequest: Not UTF-8, not JSON, a duplicate key, NaN/Infinity, an integer too long
            to convert, or nesting too deep to parse.
    """
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


def read_body(request: Request, limit: int) -> bytes:
    """Read at most ``limit`` bytes of body, also when it is chunked (no Content-Length).

    Raises:
        RequestEntityTooLarge: The body is longer than ``limit``.
    """
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge(f"request body is larger than the limit of {limit} bytes")
    stream = request.stream
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
