"""KServe V1 routes."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from inference_server.http.lifecycle import LIFECYCLE_KEY

from .conftest import SETOSA, VIRGINICA


def test_models_lists_iris(client: FlaskClient) -> None:
    """GET /v1/models names the one model."""
    assert client.get("/v1/models").get_json() == {"models": ["iris"]}


def test_model_ready(client: FlaskClient) -> None:
    """GET /v1/models/iris says ready."""
    response = client.get("/v1/models/iris")
    assert response.status_code == 200
    assert response.get_json() == {"name": "iris", "ready": True}


def test_model_not_ready_once_draining(make_app: Callable[..., Flask]) -> None:
    """After shutdown began the model answers 503 with a JSON error."""
    app = make_app()
    app.extensions[LIFECYCLE_KEY].begin_shutdown()
    response = app.test_client().get("/v1/models/iris")
    assert response.status_code == 503
    assert response.get_json() == {"error": "Model with name iris is not ready."}


def test_predict_instances(client: FlaskClient) -> None:
    """POST :predict answers class indices."""
    response = client.post("/v1/models/iris:predict", json={"instances": [SETOSA, VIRGINICA]})
    assert response.status_code == 200
    assert response.get_json() == {"predictions": [0, 2]}


def test_predict_rejects_other_fields(client: FlaskClient) -> None:
    """Unknown fields and a missing instances field are 400."""
    for body in ({"instances": [SETOSA], "x": 1}, {}, {"instances": SETOSA}, {"instances": 3}):
        response = client.post("/v1/models/iris:predict", json=body)
        assert response.status_code == 400, body
        assert "error" in response.get_json()


def test_unknown_model_is_404(client: FlaskClient) -> None:
    """Another model name is a JSON 404."""
    response = client.get("/v1/models/other")
    assert response.status_code == 404
    assert "error" in response.get_json()
