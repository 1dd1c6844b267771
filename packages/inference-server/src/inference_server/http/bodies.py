"""Reading HTTP request bodies from a WSGI environ: media type and a bounded read.

One object, :class:`BodyReader`, does it for every prediction route, so the limits that
protect a worker (body size, read deadlines, chunk framing, ``Content-Encoding``) live in one
place and apply to every protocol alike.

Gunicorn's keep-alive timeout covers the headers only: once they are in, nothing limited how
long a client may take to send its body, and clients that stalled mid-body held their
connections for ever. :class:`BodyReader` gives the read a deadline between two reads and a
total one, answers 408 past either, and shuts the connection's read side so Gunicorn does
not wait for the rest of the body before closing it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Collection, Mapping
from contextlib import AbstractContextManager, nullcontext, suppress
from typing import IO, Any

from inference_server.http.errors import JSON_MIMETYPE, ApiError

#: Bytes read from the socket at a time (gunicorn_conf maps buffers this large on their own).
READ_CHUNK = 64 * 1024
#: Bodies up to this size (every ordinary prediction) do not count against the in-flight
#: budget, so a flood of large bodies never refuses them.
_SMALL_BODY = 16 * 1024
#: Content-Encoding values meaning "not encoded"; any other is refused (415), not guessed.
_IDENTITY = frozenset({"", "identity"})
try:  # Gunicorn's framing errors of a chunked body, raised from wsgi.input.read()
    from gunicorn.http.errors import (  # type: ignore[import-untyped,unused-ignore]
        NoMoreData,
        ParseException,
    )

    _FRAMING_ERRORS: tuple[type[BaseException], ...] = (ParseException, NoMoreData)
except ImportError:  # pragma: no cover - another WSGI server
    _FRAMING_ERRORS = ()


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


class BodyReader:
    """Reads a request body of at most ``limit`` bytes, with or without Content-Length."""

    def __init__(
        self,
        limit: int,
        *,
        idle_timeout: float | None = None,
        total_timeout: float | None = None,
        in_flight_limit: int | None = None,
    ) -> None:
        """Refuse bodies over ``limit`` bytes (413), or slower than the deadlines (408).

        Args:
            limit: Largest body in bytes.
            idle_timeout: Longest wait for the next bytes of a body, seconds (None: none).
            total_timeout: Longest time to receive a whole body, seconds (None: none).
            in_flight_limit: Bytes of large bodies (over 16 KiB) this worker may hold at once;
                past it a large body is answered 503 with ``Retry-After`` (None: no bound).
                Small bodies (every ordinary prediction) are never refused.
        """
        self.limit = limit
        self.idle_timeout = idle_timeout
        self.total_timeout = total_timeout
        self.in_flight_limit = in_flight_limit
        self.in_flight = 0
        self._lock = threading.Lock()  # gthread workers share one reader between threads

    def too_large(self) -> ApiError:
        """The 413 answer."""
        return ApiError(413, f"request body is larger than the limit of {self.limit} bytes")

    def read(self, environ: Mapping[str, Any]) -> bytes:
        """The body of the request ``environ`` describes.

        With Content-Length: checked against the limit, then read. Without it (a chunked
        body, which the WSGI server de-chunks and marks ``wsgi.input_terminated``): at most
        ``limit + 1`` bytes, so an over-long body is refused, never truncated.

        Raises:
            ApiError: 413 for a body over the limit; 400 for a malformed Content-Length or
                chunked framing; 408 past a read deadline; 415 for a Content-Encoding; 501
                for a transfer coding other than a lone ``chunked``.
        """
        _refuse_codings(environ)
        length = environ.get("CONTENT_LENGTH", "")
        if length:
            if not (length.isascii() and length.isdigit()):
                raise ApiError(400, "Content-Length must be a non-negative integer")
            size = int(length)
            if size > self.limit:
                raise self.too_large()
        elif not environ.get("wsgi.input_terminated"):
            return b""  # WSGI: without a length, only a terminated stream may be read
        else:
            size = -1
        sock = environ.get("gunicorn.socket")
        previous = sock.gettimeout() if sock is not None else None
        reserved = 0
        try:
            with self._total_deadline(sock):
                if size > _SMALL_BODY:
                    reserved = self._reserve(size, sock)
                return self._read(environ["wsgi.input"], size, sock)
        except TimeoutError:
            _stop_reading(sock)
            raise ApiError(408, "request body not received in time") from None
        except _FRAMING_ERRORS:
            _stop_reading(sock)
            raise ApiError(400, "malformed request body: bad chunked framing") from None
        finally:
            if reserved:
                self._release(reserved)
            if sock is not None:
                with suppress(OSError):
                    sock.settimeout(previous)

    def _reserve(self, size: int, sock: socket.socket | None) -> int:
        """Count ``size`` bytes against the in-flight budget, or refuse the body (503)."""
        with self._lock:
            if self.in_flight_limit is None or self.in_flight + size <= self.in_flight_limit:
                self.in_flight += size
                return size
        _stop_reading(sock)
        raise ApiError(
            503,
            "too many large request bodies in flight; retry shortly",
            headers=(("Retry-After", "1"),),
        )

    def _release(self, size: int) -> None:
        with self._lock:
            self.in_flight -= size

    def _read(self, stream: IO[bytes], size: int, sock: socket.socket | None) -> bytes:
        """Read ``size`` bytes (or up to ``limit + 1`` if -1) in chunks, within the deadlines."""
        wanted = self.limit + 1 if size < 0 else size
        started = time.monotonic()
        reserved = 0
        chunks: list[bytes] = []
        received = 0
        try:
            while received < wanted:
                if sock is not None and (self.idle_timeout or self.total_timeout):
                    # Each recv() below waits at most this long for data.
                    sock.settimeout(self._wait(started))
                chunk = stream.read(min(READ_CHUNK, wanted - received))
                if not chunk:
                    break
                chunks.append(chunk)
                received += len(chunk)
                if size < 0 and received > _SMALL_BODY and not reserved:
                    # A large chunked body: its length is unknown, so count the most it may be.
                    reserved = self._reserve(self.limit + 1, sock)
            if size < 0 and received > self.limit:
                raise self.too_large()
            return b"".join(chunks)
        except BaseException:
            # The budget is released below, so the bytes must go now too, not whenever a
            # traceback that still holds this frame is dropped.
            chunks.clear()
            raise
        finally:
            if reserved:
                self._release(reserved)

    def _total_deadline(self, sock: socket.socket | None) -> AbstractContextManager[Any]:
        """Under gevent, a timer that also stops a client trickling a byte at a time.

        Elsewhere the total deadline is checked between chunks (each read waits at most the
        remaining time for data).
        """
        if self.total_timeout and type(sock).__module__.startswith("gevent"):
            import gevent  # type: ignore[import-untyped,unused-ignore]  # noqa: PLC0415

            timer: AbstractContextManager[Any] = gevent.Timeout(self.total_timeout, TimeoutError)
            return timer
        return nullcontext()

    def _wait(self, started: float) -> float:
        waits = [w for w in (self.idle_timeout,) if w]
        if self.total_timeout:
            remaining = self.total_timeout - (time.monotonic() - started)
            if remaining <= 0:
                raise TimeoutError
            waits.append(remaining)
        return min(waits)


def _refuse_codings(environ: Mapping[str, Any]) -> None:
    """Refuse a body in a coding nothing here decodes (transfer or content coding)."""
    coding = environ.get("HTTP_TRANSFER_ENCODING")
    if coding is not None and [c.strip(" \t").lower() for c in coding.split(",")] != ["chunked"]:
        # Gunicorn refuses these before the app (http.gunicorn.pre_request); Granian
        # de-chunks "gzip, chunked" and would hand over a body nothing decodes.
        raise ApiError(501, "Transfer-Encoding is not supported: send chunked alone")
    encoding = environ.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if encoding not in _IDENTITY:
        raise ApiError(415, "Content-Encoding is not supported: send the body unencoded (identity)")


def _stop_reading(sock: socket.socket | None) -> None:
    """Close the read side: the rest of the body is never read, the answer still goes out.

    Gunicorn would otherwise read the unread body before the next request on the
    connection, waiting on exactly the client that was too slow.
    """
    if sock is not None:
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RD)
