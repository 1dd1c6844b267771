"""One JSON access-log line per request; the request id is kept or made up and echoed."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable

import pytest
from flask import Flask

from inference_server.http.logs import ACCESS_LOGGER

from .conftest import SETOSA


@pytest.fixture
def logged(make_app: Callable[..., Flask]) -> Flask:
    """An app with access logging on."""
    return make_app(LOG_REQUESTS=True)


def _lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == ACCESS_LOGGER]


def test_one_json_line_per_request(logged: Flask, caplog: pytest.LogCaptureFixture) -> None:
    """The line has method, path, status, latency and request id, and never the body."""
    logger = logging.getLogger(ACCESS_LOGGER)
    logger.addHandler(caplog.handler)
    try:
        response = logged.test_client().post("/predict", json={"features": [9.87, 6.54, 3.21, 1.0]})
    finally:
        logger.removeHandler(caplog.handler)
    (line,) = _lines(caplog)
    assert line["method"] == "POST"
    assert line["path"] == "/predict"
    assert line["status"] == 200
    assert isinstance(line["latency_ms"], float)
    assert line["request_id"] == response.headers["X-Request-ID"]
    assert "9.87" not in json.dumps(line)


@pytest.mark.parametrize("path", ["/healthz", "/predict"])
def test_incoming_request_id_is_logged_beside_the_servers_own(
    logged: Flask, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    """A well-formed X-Request-ID is echoed and logged as ``client_request_id``.

    The line's ``request_id`` is always the server's: a reused client id forges nothing.
    """
    logger = logging.getLogger(ACCESS_LOGGER)
    logger.addHandler(caplog.handler)
    try:
        for _ in range(2):
            response = logged.test_client().post(
                path, json={"features": SETOSA}, headers={"X-Request-ID": "abc-123"}
            )
            assert response.headers["X-Request-ID"] == "abc-123"
        logged.test_client().post(path, json={"features": SETOSA}, headers={"X-Request-ID": "a b"})
    finally:
        logger.removeHandler(caplog.handler)
    first, second, malformed = _lines(caplog)
    assert first["client_request_id"] == second["client_request_id"] == "abc-123"
    ids = {first["request_id"], second["request_id"], malformed["request_id"]}
    assert len(ids) == 3
    assert all(re.fullmatch(r"[0-9a-f]{32}", str(rid)) for rid in ids)
    assert malformed["client_request_id"] is None


@pytest.mark.parametrize("bad", ["", "x" * 129, "a b", "<script>", "é"])
def test_malformed_request_id_is_replaced(logged: Flask, bad: str) -> None:
    """An oversized or odd X-Request-ID is replaced by a fresh one."""
    response = logged.test_client().get("/healthz", headers={"X-Request-ID": bad})
    assert response.headers["X-Request-ID"] != bad
    assert len(response.headers["X-Request-ID"]) == 32


def test_logging_off_still_sets_request_id(app: Flask) -> None:
    """With LOG_REQUESTS false there is no line but the id header is still set."""
    response = app.test_client().post("/predict", json={"features": SETOSA})
    assert len(response.headers["X-Request-ID"]) == 32
