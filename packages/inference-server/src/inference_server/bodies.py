"""Reading HTTP request bodies from a WSGI environ: media type and a bounded read.

One object, :class:`BodyReader`, does it for every prediction route, so the limits that
protect a worker (body size today; read deadlines, chunk framing, ``Content-Encoding`` as
they come) live in one place and apply to every protocol alike.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import IO, Any

from inference_server.errors import JSON_MIMETYPE, ApiError

_READ_CHUNK = 64 * 1024


def media_type(content_type: str) -> tuple[str, dict[str, str]]:
    """Split a Content-Type value into its lower-case media type and its parameters."""
    kind, *parameters = content_type.split(";")
    params: dict[str, str] = {}
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        params[name.strip().lower()] = value.strip().strip('"')
    return kind.strip().lower(), params


def check_content_type(content_type: str, accepted: Collection[str] = (JSON_MIMETYPE,)) -> None:
    """Accept a media type in ``accepted`` (JSON in UTF-8 only) or no Content-Type at all.

    tritonclient sends Open Inference Protocol requests without a Content-Type, so a missing
    header means JSON; any other media type is answered with 415.

    Raises:
        ApiError: 415 for another media type or a JSON charset other than UTF-8.
    """
    if not content_type or content_type == JSON_MIMETYPE:
        return
    kind, params = media_type(content_type)
    if kind not in accepted:
        raise ApiError(415, f"Content-Type must be {JSON_MIMETYPE}, got {kind!r}")
    charset = params.get("charset")
    if kind == JSON_MIMETYPE and charset is not None and charset.lower().replace("-", "") != "utf8":
        raise ApiError(415, f"JSON bodies must be UTF-8, got charset {charset!r}")


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


class BodyReader:
    """Reads a request body of at most ``limit`` bytes, with or without Content-Length."""

    def __init__(self, limit: int) -> None:
        """Refuse bodies over ``limit`` bytes (413)."""
        self.limit = limit

    def too_large(self) -> ApiError:
        """The 413 answer."""
        return ApiError(413, f"request body is larger than the limit of {self.limit} bytes")

    def read(self, environ: Mapping[str, Any]) -> bytes:
        """The body of the request ``environ`` describes.

        With Content-Length: checked against the limit, then one exact read. Without it (a
        chunked body, which the WSGI server de-chunks and marks ``wsgi.input_terminated``):
        at most ``limit + 1`` bytes, so an over-long body is refused, never truncated.

        Raises:
            ApiError: 413 for a body over the limit, 400 for a malformed Content-Length.
        """
        stream = environ["wsgi.input"]
        length = environ.get("CONTENT_LENGTH", "")
        if length:
            if not (length.isascii() and length.isdigit()):
                raise ApiError(400, "Content-Length must be a non-negative integer")
            size = int(length)
            if size > self.limit:
                raise self.too_large()
            return read_exactly(stream, size)
        if not environ.get("wsgi.input_terminated"):
            return b""  # WSGI: without a length, only a terminated stream may be read
        chunks: list[bytes] = []
        received = 0
        while received <= self.limit:
            chunk = stream.read(min(_READ_CHUNK, self.limit + 1 - received))
            if not chunk:
                break
            chunks.append(chunk)
            received += len(chunk)
        if received > self.limit:
            raise self.too_large()
        return b"".join(chunks)
