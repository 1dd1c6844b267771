"""Kubernetes probes: ``/healthz`` (liveness) and ``/readyz`` (readiness).

Liveness only says the worker answers. Readiness says the model loaded and passed its
golden self-test, and turns 503 as soon as the worker got SIGTERM, so endpoints drain.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app

from inference_server.errors import error_response
from inference_server.jsonio import json_response
from inference_server.lifecycle import LIFECYCLE_KEY, Lifecycle

blueprint = Blueprint("health", __name__)


def current_lifecycle() -> Lifecycle:
    """The readiness state of the current app."""
    lifecycle: Lifecycle = current_app.extensions[LIFECYCLE_KEY]
    return lifecycle


@blueprint.get("/healthz")
def healthz() -> Response:
    """Liveness: 200 while the process can answer at all."""
    return json_response({"status": "ok"})


@blueprint.get("/readyz")
def readyz() -> Response:
    """Readiness: 200 when the model is loaded and no shutdown began, else 503."""
    lifecycle = current_lifecycle()
    if lifecycle.ready:
        return json_response({"status": "ready"})
    return error_response(503, f"not ready: {lifecycle.reason}")
