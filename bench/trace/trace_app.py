"""The shipped app wrapped in a recorder of per-request timestamps (bench/trace_worker.py).

Each worker keeps, in memory, one tuple per request: the client's port (one keep-alive
connection), when the app was entered (request line and headers read), when it returned
(answer built, written by the server right after), plus every garbage collection's start
and stop, and dumps them as JSON when it exits. Nothing is written during the load.
"""

from __future__ import annotations

import gc
import json
import os
import time
from typing import Any

from inference_server import create_app

_clock = time.perf_counter_ns
_requests: list[tuple[int, int, int]] = []
_gc: list[tuple[str, int, int]] = []


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    _gc.append((phase, info["generation"], _clock()))


def dump() -> None:
    """Write this worker's records to $TRACE_DIR/<pid>.json."""
    path = os.path.join(os.environ["TRACE_DIR"], f"{os.getpid()}.json")
    with open(path, "w") as out:
        json.dump({"pid": os.getpid(), "requests": _requests, "gc": _gc}, out)


def _wrap(inner: Any) -> Any:
    def traced(environ: dict[str, Any], start_response: Any) -> Any:
        entered = _clock()
        result = inner(environ, start_response)
        _requests.append((int(environ.get("REMOTE_PORT") or 0), entered, _clock()))
        return result

    return traced


app = create_app()
app.wsgi_app = _wrap(app.wsgi_app)
gc.callbacks.append(_on_gc)
