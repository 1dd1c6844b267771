"""Readiness state of one worker: ready after the model's self-test, not ready once draining."""

from __future__ import annotations

import gc

#: Key of the ``Lifecycle`` object in ``app.extensions``.
LIFECYCLE_KEY = "inference_server.lifecycle"
#: Allocations between young-generation collections (Python's default is 700). A 1,000-row
#: JSON batch allocates a list per row, all alive until the answer is sent: at the default,
#: each request ran one or two collections that walked all of them, to free nothing (request
#: objects are freed by reference counting; cycles are rare and small).
GC_YOUNG_THRESHOLD = 50_000


def settle_worker() -> None:
    """Freeze a worker's loaded app for the GC, and collect the young generation less often.

    The app and its model were built in the worker, after the master's freeze: without a
    second one, a full collection walks all of them (tens of milliseconds in which the worker
    answers none of its connections). Frozen, it walks only what requests left.
    ``bench/trace_worker.py`` prints each worker's collections and the longest pause.
    """
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


class Lifecycle:
    """Two flags, written by start-up and by the SIGTERM handler, read by readiness probes.

    Plain attribute writes are atomic in CPython, so no lock is needed.
    """

    def __init__(self) -> None:
        self.model_ready = False
        self.shutting_down = False

    def mark_ready(self) -> None:
        """Record that the model loaded and passed its golden self-test."""
        self.model_ready = True

    def begin_shutdown(self) -> None:
        """Record that shutdown began: readiness answers 503 from now on."""
        self.shutting_down = True

    @property
    def ready(self) -> bool:
        """Whether this worker should receive new traffic."""
        return self.model_ready and not self.shutting_down

    @property
    def reason(self) -> str:
        """Why the worker is not ready (empty when it is)."""
        if self.shutting_down:
            return "shutting down"
        if not self.model_ready:
            return "model not loaded"
        return ""
