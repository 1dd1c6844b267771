"""The prediction core: one place for auth, errors, metrics and the access log."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from inference_server.logs import ACCESS_LOGGER
from inference_server.protocols import Answer, Call, Headers, Prediction, SeedProtocol
from inference_server.service import PredictionRoutes

from .conftest import SETOSA


class Exploding(SeedProtocol):
    """The seed protocol with a bug in its renderer."""

    def render(self, call: Call[bool], prediction: Prediction) -> Answer:
        """Fail like a bug would."""
        raise RuntimeError("secret internal detail")


def _with_protocol(app: Flask, protocol: Any) -> Flask:
    routes = app.wsgi_app
    assert isinstance(routes, PredictionRoutes)
    routes.protocols[protocol.route] = protocol
    return app


def test_unexpected_error_is_logged_once_and_answered_500(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    """A bug: one log record with the request id and traceback; the client sees a fixed 500."""
    app = _with_protocol(make_app(), Exploding())
    with caplog.at_level(logging.ERROR, logger="inference_server"):
        response = app.test_client().post(
            "/predict", json={"features": SETOSA}, headers={"X-Request-ID": "bug-1"}
        )
    assert response.status_code == 500
    assert response.get_json() == {"error": "internal server error"}
    assert "secret" not in response.get_data(as_text=True)
    records = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(records) == 1
    assert "client_request_id=bug-1" in records[0].getMessage()
    assert records[0].exc_info is not None
    assert "secret internal detail" in caplog.text


@pytest.mark.parametrize("method", ["get", "put", "delete", "options"])
@pytest.mark.parametrize("path", ["/predict", "/v1/models/iris:predict", "/v2/models/iris/infer"])
def test_other_methods_are_405_with_allow(app: Flask, method: str, path: str) -> None:
    """Prediction routes answer only POST: 405 JSON with Allow: POST."""
    response = getattr(app.test_client(), method)(path)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert "error" in response.get_json()


def test_errors_are_measured_and_logged_like_successes(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    """A 401 and a 400 get the latency metric, the error counter and one access-log line each."""
    app = make_app(AUTH_TOKENS="t", LOG_REQUESTS=True)
    logger = logging.getLogger(ACCESS_LOGGER)
    logger.addHandler(caplog.handler)
    try:
        client = app.test_client()
        client.post("/v1/models/iris:predict", json={"instances": [SETOSA]})
        client.post(
            "/v1/models/iris:predict", json={"instances": []}, headers={"Authorization": "Bearer t"}
        )
    finally:
        logger.removeHandler(caplog.handler)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == ACCESS_LOGGER]
    assert [line["status"] for line in lines] == [401, 400]
    for line in lines:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(line["time"]))
        assert line["path"] == "/v1/models/iris:predict"
    text = app.test_client().get("/metrics").get_data(as_text=True)
    for status in ("401", "400"):
        assert (
            f'inference_errors_total{{route="/v1/models/iris:predict",status="{status}"}} 1.0'
            in text
        )


def test_auth_runs_before_the_body_is_read(make_app: Callable[..., Flask]) -> None:
    """Without a token, even a body over the limit is a 401, not a 413."""
    client = make_app(AUTH_TOKENS="t", MAX_CONTENT_LENGTH=10).test_client()
    response = client.post("/predict", data=b"x" * 100, content_type="application/json")
    assert response.status_code == 401


def test_the_headers_protocols_see(make_app: Callable[..., Flask]) -> None:
    """A protocol gets the raw body bytes and the request headers (for binary extensions)."""
    seen: dict[str, Any] = {}

    class Spy(SeedProtocol):
        def parse(self, body: bytes, headers: Headers) -> Call[bool]:
            seen["body"] = body
            seen["header"] = headers.get("Inference-Header-Content-Length")
            return super().parse(body, headers)

    app = _with_protocol(make_app(), Spy())
    body = b'{"features": [5.1, 3.5, 1.4, 0.2]}'
    response = app.test_client().post(
        "/predict",
        data=body,
        content_type="application/json",
        headers={"Inference-Header-Content-Length": "35"},
    )
    assert response.status_code == 200
    assert seen == {"body": body, "header": "35"}
