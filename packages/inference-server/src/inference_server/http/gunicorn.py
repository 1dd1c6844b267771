"""Gunicorn machinery that ``inference_server.gunicorn_conf`` wires up: hooks, logging, memory.

Nothing here reads a setting: the config module passes the values. Hooks are plain
functions with Gunicorn's signatures; :func:`install_json_errors` and
:func:`map_large_allocations` change process-wide state and are called once, in the master,
before the workers fork.
"""

from __future__ import annotations

import ctypes
import gc
import os
import signal
from pathlib import Path
from typing import Any

# types-gunicorn may or may not be installed with the lint tools: accept both.
import gunicorn.util  # type: ignore[import-untyped,unused-ignore]
from gunicorn.glogging import Logger  # type: ignore[import-untyped,unused-ignore]

from inference_server.http.errors import error_bytes
from inference_server.http.lifecycle import LIFECYCLE_KEY

#: The worker class ``INFERENCE_WORKER_CLASS=gevent`` runs (see :mod:`.worker`).
FAIR_GEVENT_WORKER = "inference_server.http.worker.FairGeventWorker"
#: glibc's mallopt() parameter number for the mmap threshold (<malloc.h>).
_M_MMAP_THRESHOLD = -3
#: Allocations between young-generation collections (Python's default is 700). A 1,000-row
#: JSON batch allocates a list per row, all alive until the answer is sent: at the default,
#: each request ran one or two collections that walked all of them, to free nothing (request
#: objects are freed by reference counting; cycles are rare and small).
GC_YOUNG_THRESHOLD = 50_000


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
    ``{"error": ...}``. The message may quote client input: bounded like ours.
    """
    body = error_bytes(f"{reason}: {mesg}" if mesg else reason)
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    gunicorn.util.write_nonblock(sock, head.encode("latin-1") + body)


def install_json_errors() -> None:
    """Answer Gunicorn's own errors with :func:`write_json_error` (in the master, pre-fork)."""
    gunicorn.util.write_error = write_json_error


class NoAccessLogger(Logger):  # type: ignore[misc,unused-ignore]
    """Gunicorn's logger without its access log: the app writes its own JSON line.

    Because ``logconfig_dict`` is set, Gunicorn's ``Logger.access`` would build the
    access-log atoms of every request only for ``gunicorn.access`` to drop the record at
    WARNING (py-spy showed it on ``/predict``). Error logging is unchanged.
    """

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
