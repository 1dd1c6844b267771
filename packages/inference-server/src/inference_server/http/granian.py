"""Granian machinery that ``inference_server.granian_conf`` wires up: the launcher and its hooks.

Granian (a Rust HTTP server) serves the same WSGI app as Gunicorn, in worker processes
forked from the master, at about twice the rate (``bench/results``). Nothing here reads a
setting: the config module passes the values. What differs from Gunicorn, and why it must
sit behind a proxy that buffers whole request bodies, is :data:`BUFFERING_PROXY_WARNING`.

Granian is an optional dependency (``inference-server[granian]``): it is imported only when
:func:`serve` runs.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

from inference_server.http.gunicorn import logconfig as stdout_logconfig
from inference_server.http.lifecycle import LIFECYCLE_KEY, settle_worker

logger = logging.getLogger("inference_server")

#: Logged at start-up, every time: the one property that makes Granian unsafe on its own.
BUFFERING_PROXY_WARNING = (
    "Granian has no request-body read timeout: a client that stalls mid-body holds a worker"
    " thread for good (INFERENCE_BODY_IDLE_TIMEOUT and INFERENCE_BODY_TIMEOUT do not apply)."
    " Serve it only behind a proxy that buffers whole request bodies (ingress-nginx:"
    " proxy-request-buffering on), or use INFERENCE_HTTP_SERVER=gunicorn"
)


def split_bind(bind: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) as Granian's address and port.

    Raises:
        ValueError: Not ``host:port`` with a port in 1-65535 (Granian binds no Unix socket
            from this setting).
    """
    host, sep, port = bind.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"INFERENCE_BIND must be host:port for Granian, got {bind!r}")
    return host.removeprefix("[").removesuffix("]"), int(port)


def logconfig(level: str) -> dict[str, Any]:
    """Granian's ``log_dictconfig``: Gunicorn's plain lines on stdout at ``level``, no access log.

    Granian replaces each top-level key of its own configuration with ours, so every key it
    uses is here. Its access log stays off: the app writes its own JSON line.
    """
    config = stdout_logconfig(level)
    config["loggers"] = {
        "_granian": {"level": level.upper(), "handlers": ["stdout"], "propagate": False},
        "granian.access": {"level": "WARNING", "handlers": [], "propagate": False},
    }
    return config


def load_app(target: str) -> Callable[..., Any]:
    """Build the WSGI app in a worker (``module:factory``), then settle the worker.

    Called by Granian in each worker after the fork, like Gunicorn's ``load()``. The loaded
    app is frozen for the GC (:func:`settle_worker`); when it carries a
    :class:`~inference_server.http.lifecycle.Lifecycle`, SIGTERM flips its readiness to 503
    before Granian drains (:func:`tie_readiness_to_sigterm`).
    """
    module_name, _, factory = target.partition(":")
    app = getattr(importlib.import_module(module_name), factory or "app")()
    settle_worker()
    lifecycle = getattr(app, "extensions", {}).get(LIFECYCLE_KEY)
    if lifecycle is None:
        logger.warning("no inference_server lifecycle: readiness is not tied to SIGTERM")
    else:
        tie_readiness_to_sigterm(lifecycle.begin_shutdown)
    return app  # type: ignore[no-any-return]


def tie_readiness_to_sigterm(begin_shutdown: Callable[[], None]) -> None:
    """Make the worker's SIGINT/SIGTERM handler call ``begin_shutdown`` first.

    Granian installs its handlers (which start the drain) right after the app is loaded,
    through ``granian._signals.set_main_signals``; this wraps that function in this worker
    only, so every handler it installs calls ``begin_shutdown`` before Granian's.
    ``tests/test_granian.py`` fails when an upgrade moves it.
    """
    from granian import _signals  # noqa: PLC0415 - an optional dependency

    install: Callable[..., Any] = _signals.set_main_signals

    def set_main_signals(handler: Callable[..., Any], reload_handler: Any = None) -> Any:
        def on_signal(signum: int, frame: Any) -> None:
            begin_shutdown()
            handler(signum, frame)

        return install(on_signal, reload_handler)

    _signals.set_main_signals = set_main_signals


def serve(
    target: str,
    *,
    bind: str,
    workers: int,
    keepalive: int,
    graceful_timeout: int,
    log_level: str,
) -> None:
    """Run Granian's master in this process until SIGTERM/SIGINT, serving ``target`` (WSGI).

    - One Python thread per worker (``--blocking-threads 1``) on a single-threaded Rust
      runtime: the app is CPU-bound under the GIL, and the workers are the parallelism.
    - ``keepalive`` seconds is also the deadline for a request's headers, as under
      Gunicorn; Granian's HTTP/1 keep-alive itself has no idle timeout setting.
    - ``graceful_timeout``: how long the master waits for a draining worker before it kills it.
    - Crashed workers are started again, as Gunicorn does.
    """
    from granian import Granian  # noqa: PLC0415 - an optional dependency
    from granian.constants import HTTPModes, Interfaces, RuntimeModes  # noqa: PLC0415
    from granian.http import HTTP1Settings  # noqa: PLC0415
    from granian.log import LogLevels  # noqa: PLC0415

    address, port = split_bind(bind)
    logger.warning("%s", BUFFERING_PROXY_WARNING)
    server = Granian(
        target,
        address=address,
        port=port,
        interface=Interfaces.WSGI,
        workers=workers,
        blocking_threads=1,
        runtime_threads=1,
        runtime_mode=RuntimeModes.st,
        http=HTTPModes.http1,
        http1_settings=HTTP1Settings(header_read_timeout=keepalive * 1000, keep_alive=True),
        websockets=False,
        log_level=LogLevels(log_level),
        log_dictconfig=logconfig(log_level),
        log_access=False,
        respawn_failed_workers=True,
        workers_kill_timeout=graceful_timeout or None,
    )
    server.serve(target_loader=load_app)
