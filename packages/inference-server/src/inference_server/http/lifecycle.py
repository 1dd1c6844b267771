"""Readiness state of one worker: ready after the model's self-test, not ready once draining."""

from __future__ import annotations

#: Key of the ``Lifecycle`` object in ``app.extensions``.
LIFECYCLE_KEY = "inference_server.lifecycle"


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
