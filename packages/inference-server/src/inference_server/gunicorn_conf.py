"""Gunicorn configuration: ``-c python:inference_server.gunicorn_conf``.

Every value comes from :class:`inference_server.settings.Settings` (its ``gunicorn`` scope:
variables, defaults and checks are defined there and listed in the package README); an
invalid value stops Gunicorn with a message naming the variable. The Kubernetes manifests'
termination arithmetic assumes graceful_timeout = 20 s.
"""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import tempfile
from pathlib import Path
from typing import Any

# types-gunicorn may or may not be installed with the lint tools: accept both.
from gunicorn.glogging import Logger  # type: ignore[import-untyped,unused-ignore]

# One BLAS/OpenMP thread per worker: requests are small and the workers are the parallelism;
# more threads only oversubscribe the cores. Set before NumPy is first imported (the settings
# import the library); the image sets them too, and an explicit value from the environment wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from inference_server.settings import ConfigError, load_settings

try:
    _settings = load_settings(os.environ)
except ConfigError as _error:
    raise SystemExit(str(_error)) from None

# prometheus-client picks multiprocess mode when it is first imported, in the workers:
# the directory must be in the environment before they start.
if _settings.metrics_dir is None:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="inference-server-metrics-")

# Import the heavy, pure-code modules once, in the master, and move them to the GC's permanent
# generation: forked workers then share those pages copy-on-write instead of each importing
# NumPy/SciPy/scikit-learn/Flask privately (measured with `nox -s bench`: +98 MB -> +21 MB PSS
# per extra worker). gc.freeze() matters: without it the first collection in a worker touches
# every object header and un-shares the pages. No model is loaded and nothing numeric runs
# here, so no OpenMP/BLAS thread pool exists at fork time (that hang is why preload_app stays
# False below): each worker still creates its app and loads its model after the fork.
import gc

import flask  # noqa: F401
import numpy  # noqa: F401
import orjson  # noqa: F401
import prometheus_client  # noqa: F401
import sklearn.linear_model  # noqa: F401

import inference_server.app  # noqa: F401
from inference_server.bodies import READ_CHUNK

gc.freeze()

#: glibc's mallopt() parameter number for the mmap threshold (<malloc.h>).
_M_MMAP_THRESHOLD = -3


def map_large_allocations(threshold: int) -> bool:
    """Make glibc map every allocation of ``threshold`` bytes or more on its own pages.

    A worker reads large bodies in chunks of ``bodies.READ_CHUNK`` bytes, up to
    ``INFERENCE_BODY_BYTES_IN_FLIGHT`` at once, and frees them in bursts. glibc raises its
    adaptive mmap threshold past that size as soon as one such chunk is freed, then serves
    them from the heap, and a heap fragmented by them is never given back: after clients
    stalled near the end of 1 MiB uploads, workers kept about a tenth more RSS for good
    (bench/stalled_uploads.py). A fixed threshold maps each chunk alone and unmaps it when
    freed. Returns whether the allocator took the setting (False off glibc, e.g. musl or
    macOS, or when ``MALLOC_MMAP_THRESHOLD_`` in the environment already decided it).
    """
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold))


# In the master: forked workers inherit the allocator's settings.
map_large_allocations(READ_CHUNK)


def write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """Gunicorn's answer to a request it cannot parse (400, 414, 431, 501...), as JSON.

    Gunicorn answers these itself, before the app sees the request, with an HTML page. Its
    worker calls ``gunicorn.util.write_error`` for every one of them, so replacing that one
    function (here, in the master, before the workers fork) makes the README's promise true:
    every error is ``{"error": ...}``. The message may quote client input: bounded like ours.
    Each also gets its JSON access-log line (:func:`log_rejected`).
    """
    from gunicorn import util  # type: ignore[import-untyped,unused-ignore]  # noqa: PLC0415

    from inference_server.errors import bounded, error_bytes  # noqa: PLC0415

    message = bounded(f"{reason}: {mesg}" if mesg else reason)
    body = error_bytes(message)
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    try:
        util.write_nonblock(sock, head.encode("latin-1") + body)
    finally:
        log_rejected(sock, status_int, message)


@functools.cache
def _rejected_log() -> Any:
    """This process's access log for refused requests, made on first use (in a worker)."""
    from inference_server.logs import AccessLog  # noqa: PLC0415

    return AccessLog()


def log_rejected(sock: Any, status: int, message: str) -> None:
    """One JSON access-log line for a request Gunicorn refused before the app saw it.

    Method, path and latency are unknown here (null); ``rejected`` is the bounded answer,
    JSON-escaped like every value of the line: no more client bytes than that.
    """
    if not _settings.log_requests:
        return
    from inference_server.logs import request_ids  # noqa: PLC0415

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


import gunicorn.http.message  # type: ignore[import-untyped,unused-ignore]  # noqa: E402
import gunicorn.util  # type: ignore[import-untyped,unused-ignore]  # noqa: E402
from gunicorn.http.body import ChunkedReader  # type: ignore[import-untyped,unused-ignore]  # noqa: E402
from gunicorn.http.errors import (  # type: ignore[import-untyped,unused-ignore]  # noqa: E402
    InvalidChunkSize,
    InvalidHeader,
    UnsupportedTransferCoding,
)

gunicorn.util.write_error = write_json_error

#: Largest chunk size: more would overflow a 64-bit size in another parser on the path.
MAX_CHUNK_SIZE = 2**63 - 1


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


# Gunicorn's request parser builds its reader from this name (in the master: workers inherit).
gunicorn.http.message.ChunkedReader = StrictChunkedReader

bind = [_settings.bind]
workers = _settings.workers
# gevent, chosen by measurement (see the package README): sync workers cannot keep
# connections alive; sync and gthread workers block a thread per client still sending its
# headers, while gevent keeps answering /healthz next to hundreds of them.
# "gevent" runs Gunicorn's gevent worker with one change (inference_server.worker): it yields
# after every answer, so one fast keep-alive client cannot starve the worker's others.
worker_class = {"gevent": "inference_server.worker.FairGeventWorker"}.get(
    _settings.worker_class, _settings.worker_class
)
worker_connections = _settings.worker_connections
threads = _settings.threads
timeout = _settings.timeout
graceful_timeout = _settings.graceful_timeout
keepalive = _settings.keepalive
max_requests = _settings.max_requests
# At least 10 % jitter, so the workers of one pod never recycle together.
max_requests_jitter = _settings.jitter
# The heartbeat file is fchmod-ed every second; on a disk-backed /tmp that can stall a worker.
worker_tmp_dir = "/dev/shm" if Path("/dev/shm").is_dir() else None  # noqa: S108
# gunicorn >= 25.1 opens a control socket under $HOME or $XDG_RUNTIME_DIR by default; it is
# not used here and fails on read-only root filesystems.
control_socket_disable = True
# Models are loaded in each worker, not in the master: no fork after OpenMP/BLAS threads start.
preload_app = False
accesslog = None  # the app writes one JSON line per request itself


class NoAccessLogger(Logger):  # type: ignore[misc,unused-ignore]
    """Gunicorn's logger without its access log: the app writes its own JSON line.

    Because ``logconfig_dict`` is set, Gunicorn's ``Logger.access`` would build the
    access-log atoms of every request (~5 % of a worker's CPU in py-spy on ``/predict``) only
    for ``gunicorn.access`` to drop the record at WARNING. Error logging is unchanged.
    """

    def warning(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        """Gunicorn's warnings, cut like error messages.

        ``handle_error`` logs every refused request with the parser's message, which quotes
        up to ~4 KB of the client's bytes; the access log has the bounded excerpt.
        """
        from inference_server.errors import bounded  # noqa: PLC0415

        super().warning(bounded(str(msg) % args if args else str(msg)), **kwargs)

    @property
    def access_log_enabled(self) -> bool:
        """Never: protocol handlers use this to skip building access-log data."""
        return False

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        """Do nothing (see the class docstring)."""
        return


logger_class = NoAccessLogger
loglevel = _settings.log_level
logconfig_dict: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": loglevel.upper(), "handlers": ["stdout"]},
    "loggers": {
        "gunicorn.error": {"level": loglevel.upper(), "handlers": [], "propagate": True},
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


def on_starting(server: Any) -> None:
    """Empty the metrics directory: files of a previous run would be summed in."""
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()


#: Allocations between young-generation collections (Python's default is 700). A 1,000-row
#: JSON batch allocates a list per row, all alive until the answer is sent: at the default,
#: each request ran one or two collections that walked all of them, to free nothing (request
#: objects are freed by reference counting; cycles are rare and small).
GC_YOUNG_THRESHOLD = 50_000


def post_worker_init(worker: Any) -> None:
    """Freeze the loaded app for the GC; make SIGTERM flip readiness to 503, then drain."""
    from inference_server.lifecycle import LIFECYCLE_KEY  # noqa: PLC0415

    # The app and its model were built in this worker, after the master's freeze: without a
    # second one, a full collection walks all of them (tens of milliseconds in which the
    # worker answers none of its connections). Frozen, it walks only what requests left.
    # bench/trace_worker.py prints each worker's collections and the longest pause.
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])

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
