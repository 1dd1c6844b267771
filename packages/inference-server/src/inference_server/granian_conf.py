"""Granian configuration: what ``INFERENCE_HTTP_SERVER=granian inference-server`` runs.

The Granian counterpart of ``inference_server.gunicorn_conf``: the same settings
(:class:`inference_server.settings.Settings`; bind, workers, keep-alive, drain time and log
level have an equivalent, the Gunicorn-only ones say so in the README), the same master-side
preparation (:mod:`inference_server.prefork`) and the same app. The machinery is
:mod:`inference_server.http.granian`. Needs the ``granian`` extra.
"""

from __future__ import annotations

import os

# As in gunicorn_conf: one BLAS/OpenMP thread per worker, before NumPy is first imported.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from inference_server import prefork
from inference_server.http import granian as machinery
from inference_server.settings import ConfigError, Settings, load_settings

#: The app every worker builds (the factory Gunicorn runs too).
TARGET = "inference_server.app:create_app"


def load() -> Settings:
    """The settings, or exit with the message naming the bad variable."""
    try:
        settings = load_settings(os.environ)
        machinery.split_bind(settings.bind)
    except (ConfigError, ValueError) as error:
        raise SystemExit(str(error)) from None
    return settings


def main() -> None:
    """Prepare the master as Gunicorn's config does, then run Granian until it stops."""
    settings = load()
    try:
        import granian  # noqa: F401, PLC0415 - only to say what is missing
    except ImportError:
        raise SystemExit(
            "INFERENCE_HTTP_SERVER=granian needs Granian: pip install 'inference-server[granian]'"
        ) from None
    prefork.metrics_directory(settings, empty=True)
    prefork.share_imports()
    prefork.map_body_buffers()
    machinery.serve(
        TARGET,
        bind=settings.bind,
        workers=settings.workers,
        keepalive=settings.keepalive,
        graceful_timeout=settings.graceful_timeout,
        log_level=settings.log_level,
    )
