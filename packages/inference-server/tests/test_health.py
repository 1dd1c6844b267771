"""Liveness and readiness probes."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from inference_server.http.lifecycle import LIFECYCLE_KEY, Lifecycle


def test_healthz(client: FlaskClient) -> None:
    """Liveness is 200."""
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_after_start(client: FlaskClient) -> None:
    """Readiness is 200 once the model loaded and passed its self-test."""
    assert client.get("/readyz").get_json() == {"status": "ready"}


def test_readyz_503_once_shutdown_began(make_app: Callable[..., Flask]) -> None:
    """After SIGTERM (begin_shutdown) readiness is 503 while liveness stays 200."""
    app = make_app()
    app.extensions[LIFECYCLE_KEY].begin_shutdown()
    client = app.test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"error": "not ready: shutting down"}
    assert client.get("/healthz").status_code == 200


def test_lifecycle_states() -> None:
    """Ready needs a loaded model and no shutdown; the reason says which is missing."""
    lifecycle = Lifecycle()
    assert not lifecycle.ready
    assert lifecycle.reason == "model not loaded"
    lifecycle.mark_ready()
    assert lifecycle.ready
    assert lifecycle.reason == ""
    lifecycle.begin_shutdown()
    assert not lifecycle.ready
    assert lifecycle.reason == "shutting down"
