"""Gunicorn machinery that ``inference_server.gunicorn_conf`` wires up: hooks, logging, memory.

Nothing here reads a setting: the config module passes the values. Hooks are plain
functions with Gunicorn's signatures; :func:`install_json_errors` and
:func:`map_large_allocations` change process-wide state and are called once, in the master,
before the workers fork.
"""

from __future__ import annotations

import ctypes
import functools
import os
import signal
from pathlib import Path
from typing import Any

# types-gunicorn may or may not be installed with the lint tools: accept both.
import gunicorn.http.message  # type: ignore[import-untyped,unused-ignore]
import gunicorn.util  # type: ignore[import-untyped,unused-ignore]
from gunicorn.glogging import Logger  # type: ignore[import-untyped,unused-ignore]
from gunicorn.http.body import ChunkedReader  # type: ignore[import-untyped,unused-ignore]
from gunicorn.http.errors import (  # type: ignore[import-untyped,unused-ignore]
    InvalidChunkSize,
    InvalidHeader,
    UnsupportedTransferCoding,
)

from inference_server.http.errors import bounded, error_bytes
from inference_server.http.lifecycle import LIFECYCLE_KEY, settle_worker
from inference_server.http.logs import AccessLog, request_ids

#: The worker class ``INFERENCE_WORKER_CLASS=gevent`` runs (see :mod:`.worker`).
FAIR_GEVENT_WORKER = "inference_server.http.worker.FairGeventWorker"
#: glibc's mallopt() parameter number for the mmap threshold (<malloc.h>).
_M_MMAP_THRESHOLD = -3
#: Largest chunk size: more would overflow a 64-bit size in another parser on the path.
MAX_CHUNK_SIZE = 2**63 - 1
#: Whether Gunicorn's refusals get an access-log line (set by :func:`install_json_errors`).
_log_rejected = False


def map_large_allocations(threshold: int) -> bool:
    """Make glibc map every allocation of ``threshold`` bytes or more on its own pages.

    A worker reads large bodies in chunks of ``bodies.READ_CHUNK`` bytes, up to
    ``INFERENCE_BODY_BYTES_IN_FLIGHT`` at once, and frees them in bursts. glibc raises its
    adaptive mmap threshold past that size as soon as one such chunk is freed, then serves
    them from the heap, and a heap fragmented by them is never given back: after clients
    stalled near the end of 1 MiB uploads, workers kept more RSS for good
    (``bench/stalled_uploads.py``). A fixed threshold maps each chunk alone and unmaps it
    when freed. Returns whether the allocator took the setting (False off glibc, e.g. musl
    or macOS, or when ``MALLOC_MMAP_THRESHOLD_`` in the environment already decided it).
    """
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold))


def write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """Gunicorn's answer to a request it cannot parse (400, 414, 431, 501...), as JSON.

    Gunicorn answers these itself, before the app sees the request, with an HTML page. Its
    worker calls ``gunicorn.util.write_error`` for every one of them, so replacing that one
    function (:func:`install_json_errors`) makes the README's promise true: every error is
    ``{"error": ...}``. The message may quote client input: bounded like ours. Each also
    gets its JSON access-log line (:func:`log_rejected`).
    """
    message = bounded(f"{reason}: {mesg}" if mesg else reason)
    body = error_bytes(message)
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    try:
        gunicorn.util.write_nonblock(sock, head.encode("latin-1") + body)
    finally:
        log_rejected(sock, status_int, message)


@functools.cache
def _rejected_log() -> AccessLog:
    """This process's access log for refused requests, made on first use (in a worker)."""
    return AccessLog()


def log_rejected(sock: Any, status: int, message: str) -> None:
    """One JSON access-log line for a request Gunicorn refused before the app saw it.

    Method, path and latency are unknown here (null); ``rejected`` is the bounded answer,
    JSON-escaped like every value of the line: no more client bytes than that.
    """
    if not _log_rejected:
        return
    try:
        peer = sock.getpeername()
    except OSError:
        peer = None
    _rejected_log().request(
        None,
        None,
        status,
        None,
        request_id=request_ids(None)[0],
        remote_addr=peer[0] if isinstance(peer, tuple) else None,
        rejected=message,
    )


class StrictChunkedReader(ChunkedReader):  # type: ignore[misc,unused-ignore]
    """Gunicorn's chunked body reader, refusing at once what it would wait on.

    Gunicorn looks for a CRLF to end a chunk-size line, so a line ended by a bare LF, or a size
    too large to ever arrive, left the worker waiting for bytes until the body deadline (408).
    Both are malformed framing (RFC 9112 section 7.1): a 400, as for any other bad chunk.
    """

    def read_into(self, unreader: Any, buf: bytearray) -> None:
        """Read more of a chunk-size line or trailers, after refusing a bare LF in them.

        Gunicorn calls this only while the first CRLF it looks for is missing: every LF up to
        there must be part of a CRLF (checked before the read, so nothing waits on it, and
        after).
        """
        _refuse_bare_lf(buf)
        super().read_into(unreader, buf)
        _refuse_bare_lf(buf)

    def parse_chunk_size(self, unreader: Any, data: bytes | None = None) -> tuple[int, Any]:
        """Gunicorn's parse, refusing a size over :data:`MAX_CHUNK_SIZE`."""
        size, rest = super().parse_chunk_size(unreader, data)
        if size > MAX_CHUNK_SIZE:
            raise InvalidChunkSize(b"chunk size over 2**63 - 1")
        return size, rest


def _refuse_bare_lf(buf: bytearray) -> None:
    newline = buf.find(b"\n")
    if newline >= 0 and buf[newline - 1 : newline] != b"\r":
        raise InvalidChunkSize(b"bare LF as line terminator")


def install_json_errors(*, log_requests: bool) -> None:
    """Answer Gunicorn's own errors as JSON, logged when ``log_requests``; strict chunking.

    In the master, before the workers fork (they inherit the patched modules): Gunicorn's
    worker calls ``gunicorn.util.write_error`` and its request parser builds its chunked
    reader from ``gunicorn.http.message.ChunkedReader``.
    """
    global _log_rejected  # noqa: PLW0603 - one process-wide switch, set once before the fork
    _log_rejected = log_requests
    gunicorn.util.write_error = write_json_error
    gunicorn.http.message.ChunkedReader = StrictChunkedReader


def pre_request(worker: Any, req: Any) -> None:
    """Refuse framing Gunicorn's parser lets through, before the app reads anything.

    - Any transfer coding but a lone ``chunked``: Gunicorn accepts ``gzip, chunked`` and
      ``identity, chunked`` and hands the app a body nothing decodes (RFC 9112 section 6.1:
      an unknown coding is 501).
    - HTTP/1.1 without exactly one ``Host`` (RFC 9112 section 3.2: 400).

    Raised here, the errors take Gunicorn's own path (``handle_error``): a JSON answer from
    :func:`write_json_error`, then the connection is closed.
    """
    worker.log.debug("%s %s", req.method, req.path)  # what Gunicorn's default hook does
    hosts = 0
    for name, value in req.headers:
        if name == "TRANSFER-ENCODING":
            if [coding.strip(" \t").lower() for coding in value.split(",")] != ["chunked"]:
                raise UnsupportedTransferCoding(value[:64])
        elif name == "HOST":
            hosts += 1
    if req.version >= (1, 1) and hosts != 1:
        raise InvalidHeader("HOST", req=req)


class NoAccessLogger(Logger):  # type: ignore[misc,unused-ignore]
    """Gunicorn's logger without its access log: the app writes its own JSON line.

    Because ``logconfig_dict`` is set, Gunicorn's ``Logger.access`` would build the
    access-log atoms of every request only for ``gunicorn.access`` to drop the record at
    WARNING (py-spy showed it on ``/predict``). Error logging is unchanged.
    """

    def warning(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        """Gunicorn's warnings, cut like error messages.

        ``handle_error`` logs every refused request with the parser's message, which quotes
        up to ~4 KB of the client's bytes; the access log has the bounded excerpt.
        """
        super().warning(bounded(str(msg) % args if args else str(msg)), **kwargs)

    @property
    def access_log_enabled(self) -> bool:
        """Never: protocol handlers use this to skip building access-log data."""
        return False

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        """Do nothing (see the class docstring)."""
        return


def logconfig(level: str) -> dict[str, Any]:
    """Gunicorn's ``logconfig_dict``: plain lines on stdout at ``level``, no access log."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "root": {"level": level.upper(), "handlers": ["stdout"]},
        "loggers": {
            "gunicorn.error": {"level": level.upper(), "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
        },
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "stream": "ext://sys.stdout",
            }
        },
        "formatters": {
            "plain": {"format": "%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s"}
        },
    }


def on_starting(server: Any) -> None:
    """Empty the metrics directory: files of a previous run would be summed in."""
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()


def post_worker_init(worker: Any) -> None:
    """Freeze the loaded app for the GC; make SIGTERM flip readiness to 503, then drain."""
    settle_worker()
    lifecycle = getattr(worker.wsgi, "extensions", {}).get(LIFECYCLE_KEY)
    if lifecycle is None:  # another WSGI app served with this config
        worker.log.warning("no inference_server lifecycle: readiness is not tied to SIGTERM")
        return
    gunicorn_handler = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: Any) -> None:
        lifecycle.begin_shutdown()
        if callable(gunicorn_handler):
            gunicorn_handler(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)


def child_exit(server: Any, worker: Any) -> None:
    """Mark a dead worker's gauges so /metrics stops reporting them."""
    from prometheus_client import multiprocess  # noqa: PLC0415

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
