"""Every error, Werkzeug's and the library's, is a JSON {"error": ...} with its status."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable

import pytest
from flask import Flask

import iris_model
from inference_server.app import PIPELINE_KEY
from inference_server.http.errors import MAX_MESSAGE_CHARS, ApiError, error_bytes
from inference_server.http.pipeline import Answer, Request, Route


def _raise(error: Exception) -> Callable[[Request], Answer]:
    def handler(_request: Request) -> Answer:
        raise error

    return handler


@pytest.fixture
def faulty_app(make_app: Callable[..., Flask]) -> Flask:
    """An app with extra routes that raise on purpose."""
    app = make_app()
    pipeline = app.extensions[PIPELINE_KEY]
    pipeline.add(Route("/boom", "GET", _raise(RuntimeError("secret internal detail /etc/passwd"))))
    pipeline.add(
        Route(
            "/model-gone",
            "GET",
            _raise(iris_model.ModelLoadError("golden pair 0 no longer reproduces: secret")),
        )
    )
    pipeline.add(
        Route("/details", "GET", _raise(ApiError(422, "several problems", details=["one", "two"])))
    )
    app.testing = False
    return app


def test_404_is_json(app: Flask) -> None:
    """Unknown paths are a JSON 404."""
    response = app.test_client().get("/no/such/path")
    assert response.status_code == 404
    assert response.mimetype == "application/json"
    assert "not found" in response.get_json()["error"]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("put", "/predict", {"POST"}),
        ("get", "/predict", {"POST"}),
        ("post", "/healthz", {"GET", "HEAD"}),
        ("delete", "/v2/models/iris/infer", {"POST"}),
        ("options", "/", {"GET", "HEAD"}),
    ],
)
def test_405_keeps_allow_header(app: Flask, method: str, path: str, allow: set[str]) -> None:
    """A disallowed method is a JSON 405 that still lists the allowed methods."""
    response = getattr(app.test_client(), method)(path)
    assert response.status_code == 405
    assert response.mimetype == "application/json"
    assert set(response.headers["Allow"].replace(" ", "").split(",")) == allow
    assert "error" in response.get_json()


def test_500_hides_exception_text(faulty_app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    """A bug answers a fixed 500 message; the exception text is only logged."""
    response = faulty_app.test_client().get("/boom", headers={"X-Request-ID": "boom-1"})
    assert response.status_code == 500
    assert response.get_json() == {"error": "internal server error"}
    assert "secret" not in response.get_data(as_text=True)
    assert "secret internal detail" in caplog.text
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert re.search(
        r"GET /boom \(request_id=[0-9a-f]{32}, client_request_id=boom-1\)", record.getMessage()
    )


def test_model_load_error_is_503_without_details(faulty_app: Flask) -> None:
    """A ModelLoadError at request time is 503 with a generic message."""
    response = faulty_app.test_client().get("/model-gone")
    assert response.status_code == 503
    assert response.get_json() == {"error": "model is not available"}


def test_api_error_details(faulty_app: Flask) -> None:
    """ApiError carries an optional details list."""
    response = faulty_app.test_client().get("/details")
    assert response.status_code == 422
    assert response.get_json() == {"error": "several problems", "details": ["one", "two"]}


def test_error_messages_are_bounded() -> None:
    """No error body carries more than a bounded prefix of a message quoting client input."""
    body = json.loads(error_bytes("unknown key " + "k" * 900_000, ["x" * 10_000]))
    assert len(body["error"]) == MAX_MESSAGE_CHARS
    assert body["error"].endswith("...")
    assert len(body["details"][0]) == MAX_MESSAGE_CHARS
    assert json.loads(error_bytes("short"))["error"] == "short"
