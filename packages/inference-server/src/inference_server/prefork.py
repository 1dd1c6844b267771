"""What the server's master does before it forks its workers, under either front end.

``inference_server.gunicorn_conf`` and ``inference_server.granian_conf`` both call these,
in the master, once: the workers inherit the environment, the shared pages and the
allocator's settings.
"""

from __future__ import annotations

import gc
import importlib
import os
import tempfile
from pathlib import Path

from inference_server.http.bodies import READ_CHUNK
from inference_server.http.gunicorn import map_large_allocations
from inference_server.settings import Settings

#: The heavy, pure-code modules every worker needs (see :func:`share_imports`).
SHARED_MODULES = (
    "flask",
    "numpy",
    "orjson",
    "prometheus_client",
    "sklearn.linear_model",
    "inference_server.app",
)


def metrics_directory(settings: Settings, *, empty: bool = False) -> Path:
    """Where the workers write metrics: the setting, or a fresh temporary directory.

    prometheus-client picks multiprocess mode when it is first imported, in the workers: the
    directory must be in the environment before they start. ``empty`` removes the files of a
    previous run, which would be summed in (Gunicorn does it in its ``on_starting`` hook).
    """
    if settings.metrics_dir is None:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(
            prefix="inference-server-metrics-"
        )
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    if empty:
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
    return directory


def share_imports() -> None:
    """Import the heavy modules once, in the master, and freeze them for the GC.

    Forked workers then share those pages copy-on-write instead of each importing
    NumPy/SciPy/scikit-learn/Flask privately (the bench's memory rows: PSS per extra worker).
    ``gc.freeze()`` matters: without it the first collection in a worker touches every object
    header and un-shares the pages. No model is loaded and nothing numeric runs here, so no
    OpenMP/BLAS thread pool exists at fork time: each worker still creates its app and loads
    its model after the fork.
    """
    for name in SHARED_MODULES:
        importlib.import_module(name)
    gc.freeze()


def map_body_buffers() -> bool:
    """Map every body-sized allocation on its own pages (:func:`map_large_allocations`)."""
    return map_large_allocations(READ_CHUNK)
