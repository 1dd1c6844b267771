"""The one pipeline: every route, prediction or not, gets auth, errors, metrics and the log once."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from inference_server.app import PIPELINE_KEY
from inference_server.dataplane import Dataplane
from inference_server.http.logs import ACCESS_LOGGER
from inference_server.http.pipeline import Answer, Headers, Pipeline, Route
from inference_server.protocols import Call, Prediction, SeedProtocol

from .conftest import SETOSA


class Exploding(SeedProtocol):
    """The seed protocol with a bug in its renderer."""

    def render(self, call: Call[bool], prediction: Prediction) -> Answer:
        """Fail like a bug would."""
        raise RuntimeError("secret internal detail")


def _pipeline(app: Flask) -> Pipeline:
    pipeline = app.extensions[PIPELINE_KEY]
    assert isinstance(pipeline, Pipeline)
    assert app.wsgi_app is pipeline
    return pipeline


def _plane(app: Flask) -> Dataplane:
    """The dataplane the app's routes were built from (the seed's inference route holds it)."""
    (route,) = [r for r in _pipeline(app).routes if r.path == "/predict"]
    plane = route.handler.func.__self__  # type: ignore[attr-defined]
    assert isinstance(plane, Dataplane)
    return plane


def _with_protocol(app: Flask, path: str, protocol: Any) -> Flask:
    _pipeline(app).add(_plane(app).inference_route(path, protocol))
    return app


def test_every_route_is_registered_once_and_served_by_the_pipeline(app: Flask) -> None:
    """No route is served outside the pipeline: Flask's own router holds nothing."""
    pipeline = _pipeline(app)
    assert [rule.rule for rule in app.url_map.iter_rules() if rule.endpoint != "static"] == []
    keys = [(route.path, route.method) for route in pipeline.routes]
    assert len(keys) == len(set(keys))
    with pytest.raises(ValueError, match="registered twice"):
        pipeline.add(pipeline.routes[0])


def test_only_inference_routes_need_auth(app: Flask) -> None:
    """Each protocol says which of its routes need a token: exactly its inference POSTs."""
    needing = {route.path for route in _pipeline(app).routes if route.auth}
    assert needing == {
        "/predict",
        "/v1/models/iris:predict",
        "/v2/models/iris/infer",
        "/v2/models/iris/versions/{version}/infer",
    }
    assert all(route.method == "POST" for route in _pipeline(app).routes if route.auth)


def test_unexpected_error_is_logged_once_and_answered_500(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    """A bug: one log record with the request id and traceback; the client sees a fixed 500."""
    app = _with_protocol(make_app(), "/explode", Exploding())
    with caplog.at_level(logging.ERROR, logger="inference_server"):
        response = app.test_client().post(
            "/explode", json={"features": SETOSA}, headers={"X-Request-ID": "bug-1"}
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


def test_head_answers_a_get_route_without_a_body(app: Flask) -> None:
    """HEAD on a GET route: the GET's status and headers, no body."""
    response = app.test_client().head("/v2/models/iris")
    assert response.status_code == 200
    assert response.data == b""
    assert int(response.headers["Content-Length"]) > 0


def test_errors_are_measured_and_logged_like_successes(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    """A 401, a 400 and a 404 get the latency metric, the error counter and one log line each."""
    app = make_app(AUTH_TOKENS="t", LOG_REQUESTS=True)
    logger = logging.getLogger(ACCESS_LOGGER)
    logger.addHandler(caplog.handler)
    try:
        client = app.test_client()
        client.post("/v1/models/iris:predict", json={"instances": [SETOSA]})
        client.post(
            "/v1/models/iris:predict", json={"instances": []}, headers={"Authorization": "Bearer t"}
        )
        client.get("/v2/models/iris/versions/9/ready", headers={"X-Request-ID": "v9"})
    finally:
        logger.removeHandler(caplog.handler)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == ACCESS_LOGGER]
    assert [line["status"] for line in lines] == [401, 400, 404]
    assert lines[2]["client_request_id"] == "v9"
    for line in lines:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(line["time"]))
    text = app.test_client().get("/metrics").get_data(as_text=True)
    for status in ("401", "400"):
        assert (
            f'inference_errors_total{{route="/v1/models/iris:predict",status="{status}"}} 1.0'
            in text
        )
    route = "/v2/models/iris/versions/{version}/ready"
    assert f'inference_errors_total{{route="{route}",status="404"}} 1.0' in text


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

    app = _with_protocol(make_app(), "/spy", Spy())
    body = b'{"features": [5.1, 3.5, 1.4, 0.2]}'
    response = app.test_client().post(
        "/spy",
        data=body,
        content_type="application/json",
        headers={"Inference-Header-Content-Length": "35"},
    )
    assert response.status_code == 200
    assert seen == {"body": body, "header": "35"}


def test_a_route_without_auth_is_open_when_auth_is_on(make_app: Callable[..., Flask]) -> None:
    """Metadata and health stay open for probes and scrapers; a route saying auth is not."""
    app = make_app(AUTH_TOKENS="t")
    client = app.test_client()
    for path in ("/healthz", "/v1/models/iris", "/v2/models/iris", "/metrics", "/openapi.json"):
        assert client.get(path).status_code == 200, path
    _pipeline(app).add(Route("/secret", "GET", lambda _: Answer(200, b"{}"), auth=True))
    assert client.get("/secret").status_code == 401
    assert client.get("/secret", headers={"Authorization": "Bearer t"}).status_code == 200
