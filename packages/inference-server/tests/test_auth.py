"""Optional bearer-token authentication of the prediction routes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from inference_server.http.auth import token_matches

from .conftest import SETOSA

PREDICTIONS = [
    ("/predict", {"features": SETOSA}),
    ("/v1/models/iris:predict", {"instances": [SETOSA]}),
    (
        "/v2/models/iris/infer",
        {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": SETOSA}]},
    ),
]
OPEN = ["/", "/healthz", "/readyz", "/metrics", "/openapi.json", "/v2", "/v2/models/iris"]


@pytest.fixture
def secured(make_app: Callable[..., Flask]) -> Flask:
    """An app that accepts the tokens alpha and beta."""
    return make_app(AUTH_TOKENS="alpha, beta")


@pytest.mark.parametrize(("path", "body"), PREDICTIONS)
def test_prediction_needs_token(secured: Flask, path: str, body: dict[str, object]) -> None:
    """Without a token a prediction route is 401 with a Bearer challenge."""
    response = secured.test_client().post(path, json=body)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.get_json() == {"error": "missing bearer token"}


@pytest.mark.parametrize(("path", "body"), PREDICTIONS)
@pytest.mark.parametrize("token", ["alpha", "beta"])
def test_valid_token_passes(secured: Flask, path: str, body: dict[str, object], token: str) -> None:
    """Any configured token is accepted."""
    response = secured.test_client().post(
        path, json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Bearer gamma", "invalid bearer token"),
        ("Bearer alph", "invalid bearer token"),
        ("Basic YWxwaGE6", "Authorization must be 'Bearer <token>'"),
        ("Bearer", "Authorization must be 'Bearer <token>'"),
        ("alpha", "Authorization must be 'Bearer <token>'"),
    ],
)
def test_bad_credentials(secured: Flask, header: str, message: str) -> None:
    """Wrong or malformed credentials are 401 and say why."""
    response = secured.test_client().post(
        "/predict", json={"features": SETOSA}, headers={"Authorization": header}
    )
    assert response.status_code == 401
    assert response.get_json() == {"error": message}
    assert "realm=inference-server" in response.headers["WWW-Authenticate"].replace('"', "")


@pytest.mark.parametrize("path", OPEN)
def test_probes_and_metadata_stay_open(secured: Flask, path: str) -> None:
    """Health, metrics, metadata and OpenAPI need no token."""
    assert secured.test_client().get(path).status_code == 200


def test_tokens_from_file(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    """INFERENCE_AUTH_TOKENS_FILE (a mounted secret) holds one token per line."""
    token_file = tmp_path / "tokens"
    token_file.write_text("first\nsecond\n")
    client = make_app(AUTH_TOKENS_FILE=str(token_file)).test_client()
    ok = client.post(
        "/predict", json={"features": SETOSA}, headers={"Authorization": "Bearer second"}
    )
    assert ok.status_code == 200
    assert client.post("/predict", json={"features": SETOSA}).status_code == 401


def test_tokens_from_env(monkeypatch: pytest.MonkeyPatch, make_app: Callable[..., Flask]) -> None:
    """INFERENCE_AUTH_TOKENS is read at start-up (a numeric token stays a token)."""
    monkeypatch.setenv("INFERENCE_AUTH_TOKENS", "12345")
    client = make_app().test_client()
    ok = client.post(
        "/predict", json={"features": SETOSA}, headers={"Authorization": "Bearer 12345"}
    )
    assert ok.status_code == 200


def test_openapi_documents_security_only_when_on(secured: Flask, app: Flask) -> None:
    """The OpenAPI document declares bearer security and 401 only when tokens are set."""
    on = secured.test_client().get("/openapi.json").get_json()
    off = app.test_client().get("/openapi.json").get_json()
    assert on["paths"]["/predict"]["post"]["security"] == [{"bearer": []}]
    assert "401" in on["paths"]["/predict"]["post"]["responses"]
    assert "security" not in off["paths"]["/predict"]["post"]
    assert "securitySchemes" not in off["components"]


def test_token_matches() -> None:
    """Comparison is exact."""
    assert token_matches(b"a", (b"b", b"a"))
    assert not token_matches(b"a", (b"ab",))
    assert not token_matches(b"a", ())
