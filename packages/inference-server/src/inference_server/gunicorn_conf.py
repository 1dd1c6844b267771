"""Gunicorn configuration, read from the environment: ``-c python:inference_server.gunicorn_conf``.

| Variable                     | Setting             | Default        |
|------------------------------|---------------------|----------------|
| INFERENCE_BIND               | bind                | 0.0.0.0:5000   |
| WEB_CONCURRENCY              | workers             | 2              |
| INFERENCE_WORKER_CLASS       | worker_class        | gevent (fair)  |
| INFERENCE_WORKER_CONNECTIONS | worker_connections  | 1000 (gevent)  |
| INFERENCE_THREADS            | threads (gthread)   | 4              |
| INFERENCE_TIMEOUT            | timeout (s)         | 30             |
| INFERENCE_GRACEFUL_TIMEOUT   | graceful_timeout (s)| 20             |
| INFERENCE_KEEPALIVE          | keepalive (s)       | 5              |
| INFERENCE_MAX_REQUESTS       | max_requests        | 0 (off)        |
| INFERENCE_MAX_REQUESTS_JITTER| max_requests_jitter | >= 10% of above|
| INFERENCE_LOG_LEVEL          | loglevel            | info           |
| PROMETHEUS_MULTIPROC_DIR     | (metrics files)     | a fresh /tmp dir |

The Kubernetes manifests' termination arithmetic assumes graceful_timeout = 20 s.
"""

from __future__ import annotations

import os
import signal
import tempfile
from pathlib import Path
from typing import Any

# types-gunicorn may or may not be installed with the lint tools: accept both.
from gunicorn.glogging import Logger  # type: ignore[import-untyped,unused-ignore]


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from None
    if value < 0:
        raise SystemExit(f"{name} must not be negative, got {value}")
    return value


# prometheus-client picks multiprocess mode when it is first imported, in the workers:
# the directory must be in the environment before they start.
os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="inference-server-metrics-")
)

# One BLAS/OpenMP thread per worker: requests are tiny (4 x n floats) and the workers are the
# parallelism; more threads only oversubscribe the cores. Must be set before NumPy is
# imported below (the image sets them too; an explicit value from the environment wins).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# Import the heavy, pure-code modules once, in the master, and move them to the GC's permanent
# generation: forked workers then share those pages copy-on-write instead of each importing
# NumPy/SciPy/scikit-learn/Flask privately (measured with `nox -s bench`: +98 MB -> +21 MB PSS
# per extra worker). gc.freeze() matters: without it the first collection in a worker touches
# every object header and un-shares the pages. No model is loaded and nothing numeric runs
# here, so no OpenMP/BLAS thread pool exists at fork time (that hang is why preload_app stays
# False below): each worker still creates its app and loads its model after the fork.
import gc  # noqa: E402

import flask  # noqa: E402, F401
import numpy  # noqa: E402, F401
import orjson  # noqa: E402, F401
import prometheus_client  # noqa: E402, F401
import sklearn.linear_model  # noqa: E402, F401

import inference_server.app  # noqa: E402, F401

gc.freeze()

bind = [os.environ.get("INFERENCE_BIND", "0.0.0.0:5000")]
workers = max(1, _int_env("WEB_CONCURRENCY", 2))
# gevent, chosen by measurement (see the package README): sync workers cannot keep
# connections alive; sync and gthread workers block a thread per client still sending its
# headers, so 40 slow clients stalled /healthz on 2 x 4 gthread threads, while gevent
# answered in 6 ms next to 200 of them, at the same single-row throughput.
# "gevent" runs Gunicorn's gevent worker with one change (inference_server.worker): it yields
# after every answer, so one fast keep-alive client cannot starve the worker's others.
_WORKER_CLASSES = {
    "gevent": "inference_server.worker.FairGeventWorker",
    "gthread": "gthread",
    "sync": "sync",
}
_worker_choice = os.environ.get("INFERENCE_WORKER_CLASS", "gevent")
if _worker_choice not in _WORKER_CLASSES:
    raise SystemExit(
        f"INFERENCE_WORKER_CLASS must be gevent, gthread or sync, got {_worker_choice!r}"
    )
worker_class = _WORKER_CLASSES[_worker_choice]
worker_connections = max(1, _int_env("INFERENCE_WORKER_CONNECTIONS", 1000))
threads = max(1, _int_env("INFERENCE_THREADS", 4))
timeout = _int_env("INFERENCE_TIMEOUT", 30)
graceful_timeout = _int_env("INFERENCE_GRACEFUL_TIMEOUT", 20)
keepalive = _int_env("INFERENCE_KEEPALIVE", 5)
max_requests = _int_env("INFERENCE_MAX_REQUESTS", 0)
# At least 10 % jitter, so the workers of one pod never recycle together.
max_requests_jitter = max(_int_env("INFERENCE_MAX_REQUESTS_JITTER", 0), max_requests // 10)
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

    @property
    def access_log_enabled(self) -> bool:
        """Never: protocol handlers use this to skip building access-log data."""
        return False

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        """Do nothing (see the class docstring)."""
        return


logger_class = NoAccessLogger
loglevel = os.environ.get("INFERENCE_LOG_LEVEL", "info")
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


def on_starting(server: Any) -> None:
    """Empty the metrics directory: files of a previous run would be summed in."""
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()


def post_worker_init(worker: Any) -> None:
    """Make SIGTERM flip readiness to 503 at once, then let Gunicorn drain as usual."""
    from inference_server.lifecycle import LIFECYCLE_KEY  # noqa: PLC0415

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
