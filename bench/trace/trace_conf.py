"""The shipped Gunicorn configuration plus a hook that dumps each worker's trace at exit."""

import os
from typing import Any

from inference_server.gunicorn_conf import *  # noqa: F403


def worker_exit(server: Any, worker: Any) -> None:
    """Write the worker's records (trace_app.dump)."""
    import trace_app  # noqa: PLC0415

    trace_app.dump()


# TRACE_WORKER_CLASS=gevent traces Gunicorn's stock gevent worker, for comparison.
worker_class = os.environ.get("TRACE_WORKER_CLASS", worker_class)  # noqa: F405
