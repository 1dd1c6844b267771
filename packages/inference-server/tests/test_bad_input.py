"""Strict JSON input: every malformed body gets a 4xx JSON error, never a 5xx or a 200.

The table follows reliability.md section 1, case by case, on all three prediction routes.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from inference_server.http import errors, strictjson

from .conftest import SETOSA

ROUTES = {
    "seed": ("/predict", lambda rows: {"instances": rows}),
    "v1": ("/v1/models/iris:predict", lambda rows: {"instances": rows}),
    "v2": (
        "/v2/models/iris/infer",
        lambda rows: {
            "inputs": [
                {"name": "input-0", "shape": [len(rows), 4], "datatype": "FP64", "data": rows}
            ]
        },
    ),
}

RAW_BAD_BODIES = [
    pytest.param(b"{", 400, id="invalid-json"),
    pytest.param(b"", 400, id="empty-body"),
    pytest.param(b"\xff\xfe{}", 400, id="not-utf8"),
    pytest.param(b'{"features": [' + b"1" * 5000 + b", 1, 1, 1]}", 400, id="int-over-4300-digits"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, 400, id="nesting-100000"),
    pytest.param(b'{"features": [NaN, 1, 1, 1]}', 400, id="nan-literal"),
    pytest.param(b'{"features": [Infinity, 1, 1, 1]}', 400, id="infinity-literal"),
    pytest.param(b'{"features": [-Infinity, 1, 1, 1]}', 400, id="minus-infinity-literal"),
    pytest.param(b'{"features": [1, 1, 1, 1], "features": [2, 2, 2, 2]}', 400, id="duplicate-keys"),
    pytest.param(b"null", 400, id="top-level-null"),
    pytest.param(b"[[5.1, 3.5, 1.4, 0.2]]", 400, id="top-level-array"),
    pytest.param(b'"features"', 400, id="top-level-string"),
    pytest.param(b"{}", 400, id="missing-keys"),
    pytest.param(b'{"features": [1, 1, 1, 1], "extra": 1}', 400, id="extra-key"),
    pytest.param(b'{"features": [1, 1, 1, 1], "instances": [[1, 1, 1, 1]]}', 400, id="both-keys"),
    pytest.param(b'{"features": [null, 1, 1, 1]}', 400, id="null-in-row"),
    pytest.param(b'{"features": [true, 1, 1, 1]}', 400, id="true-in-row"),
    pytest.param(b'{"features": ["1", 1, 1, 1]}', 400, id="string-in-row"),
    pytest.param(b'{"features": [1, 1, 1]}', 400, id="three-features"),
    pytest.param(b'{"features": [1, 1, 1, 1, 1]}', 400, id="five-features"),
    pytest.param(b'{"features": []}', 400, id="empty-row"),
    pytest.param(b'{"features": 5}', 400, id="features-not-array"),
    pytest.param(b'{"features": [[1, 1, 1, 1]]}', 400, id="nested-row"),
    pytest.param(b'{"features": [1e400, 1, 1, 1]}', 400, id="1e400"),
    pytest.param(b'{"features": [' + str(10**400).encode() + b", 1, 1, 1]}", 400, id="10**400"),
    pytest.param(b'{"instances": []}', 400, id="empty-batch"),
    pytest.param(b'{"instances": [[1, 1, 1, 1], [1, 1, 1]]}', 400, id="ragged-rows"),
    pytest.param(b'{"instances": [1, 1, 1, 1]}', 400, id="instances-flat"),
    pytest.param(b'{"instances": [[1, 1, 1, 1], 5]}', 400, id="instances-mixed"),
    pytest.param(b'{"instances": [[{}, 0, 0, 0]]}', 400, id="object-in-row"),
    pytest.param(b'{"features": [1, 1, 1, 1], "probabilities": "yes"}', 400, id="bad-flag"),
    pytest.param('{"features": [1, 1, 1, 1]}'.encode("utf-16"), 400, id="utf16-bom"),
    pytest.param(b'\xef\xbb\xbf{"features": [1, 1, 1, 1]}', 400, id="utf8-bom"),
    pytest.param(b'{"features": ["\\ud800", 1, 1, 1]}', 400, id="escaped-lone-surrogate"),
    pytest.param(b'{"\xed\xa0\x80": 1}', 400, id="raw-lone-surrogate"),
    pytest.param(b'{"features": [1, 1, 1, 1]} x', 400, id="trailing-garbage"),
]


def _assert_json_error(response: object, status: int) -> dict[str, object]:
    assert response.status_code == status  # type: ignore[attr-defined]
    assert response.mimetype == "application/json"  # type: ignore[attr-defined]
    body = json.loads(response.get_data())  # type: ignore[attr-defined]
    assert isinstance(body["error"], str)
    assert body["error"]
    return body  # type: ignore[no-any-return]


@pytest.mark.parametrize(("body", "status"), RAW_BAD_BODIES)
def test_seed_rejects_malformed_bodies(client: FlaskClient, body: bytes, status: int) -> None:
    """Each malformed /predict body is answered with its 4xx and a JSON error."""
    response = client.post("/predict", data=body, content_type="application/json")
    _assert_json_error(response, status)


BAD_ROWS = [
    pytest.param([[None, 1, 1, 1]], id="null"),
    pytest.param([[True, 1, 1, 1]], id="bool"),
    pytest.param([["1", 1, 1, 1]], id="string"),
    pytest.param([[1, 1, 1]], id="short"),
    pytest.param([[[1], 1, 1, 1]], id="nested"),
    pytest.param([[1, 1, 1, 1], [1, 1]], id="ragged"),
]


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize("rows", BAD_ROWS)
def test_every_route_rejects_bad_rows(client: FlaskClient, route: str, rows: list) -> None:  # type: ignore[type-arg]
    """Bad values in rows are 400 on the seed, V1 and V2 routes alike; the message says where."""
    path, wrap = ROUTES[route]
    body = wrap(rows)
    if route == "v2":
        body["inputs"][0]["shape"] = [len(rows), 4]
    error = _assert_json_error(client.post(path, json=body), 400)
    assert "row" in str(error["error"]) or "shape" in str(error["error"])


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param(b'{"x": NaN}', 400, id="nan"),
        pytest.param(b'{"x": 1, "x": 2}', 400, id="duplicate"),
        pytest.param(b"[" * 5000 + b"]" * 5000, 400, id="deep"),
        pytest.param(b"\xff", 400, id="not-utf8"),
        pytest.param(b"[]", 400, id="not-object"),
    ],
)
def test_every_route_is_strict_json(
    client: FlaskClient, route: str, body: bytes, status: int
) -> None:
    """The strict decoder guards every prediction route."""
    path, _ = ROUTES[route]
    _assert_json_error(client.post(path, data=body, content_type="application/json"), status)


@pytest.mark.parametrize("route", list(ROUTES))
def test_wrong_content_type_is_415(client: FlaskClient, route: str) -> None:
    """A non-JSON Content-Type is refused with a JSON 415."""
    path, wrap = ROUTES[route]
    response = client.post(path, data=json.dumps(wrap([SETOSA])), content_type="text/plain")
    _assert_json_error(response, 415)


@pytest.mark.parametrize("route", list(ROUTES))
def test_missing_content_type_means_json(client: FlaskClient, route: str) -> None:
    """No Content-Type at all (as tritonclient sends) is read as JSON."""
    path, wrap = ROUTES[route]
    response = client.post(path, data=json.dumps(wrap([SETOSA])), content_type=None)
    assert response.status_code == 200, response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("application/json; charset=utf-8", 200),
        ("application/json; charset=UTF8", 200),
        ("application/json;charset=latin-1", 415),
        ("application/jsonx", 415),
        ("multipart/form-data; boundary=x", 415),
    ],
)
def test_charset_variants(client: FlaskClient, content_type: str, status: int) -> None:
    """UTF-8 charset parameters are fine; other charsets and media types are 415."""
    response = client.post(
        "/predict", data=b'{"features": [1, 1, 1, 1]}', content_type=content_type
    )
    assert response.status_code == status


@pytest.mark.parametrize("route", list(ROUTES))
def test_body_over_limit_is_413(make_app: Callable[..., Flask], route: str) -> None:
    """A Content-Length over the limit is answered 413 before the body is read."""
    client = make_app(MAX_CONTENT_LENGTH=100).test_client()
    path, wrap = ROUTES[route]
    body = json.dumps(wrap([SETOSA] * 20)).encode()
    _assert_json_error(client.post(path, data=body, content_type="application/json"), 413)


@pytest.mark.parametrize("size", [99, 100, 101, 5000])
def test_chunked_body_is_bounded(make_app: Callable[..., Flask], size: int) -> None:
    """A chunked body (no Content-Length) is read up to limit + 1 bytes: over the limit is 413."""
    client = make_app(MAX_CONTENT_LENGTH=100).test_client()
    body = b'{"features": [1, 1, 1, 1]}'
    body = body[:-1] + b" " * (size - len(body)) + b"}"
    response = client.post(
        "/predict",
        input_stream=io.BytesIO(body),
        content_type="application/json",
        environ_overrides={"wsgi.input_terminated": True},
    )
    if size <= 100:
        assert response.status_code == 200, response.get_data(as_text=True)
    else:
        _assert_json_error(response, 413)


def test_batch_over_max_rows_is_413(make_app: Callable[..., Flask]) -> None:
    """More rows than INFERENCE_MAX_ROWS is 413 with the library's message."""
    client = make_app(MAX_ROWS=3).test_client()
    error = _assert_json_error(client.post("/predict", json={"instances": [SETOSA] * 4}), 413)
    assert "4 rows" in str(error["error"])
    assert client.post("/predict", json={"instances": [SETOSA] * 3}).status_code == 200


def test_decode_accepts_plain_json() -> None:
    """Well-formed JSON decodes as usual."""
    assert strictjson.decode(b'{"a": [1, 2.5, "x", null, true]}').value == {
        "a": [1, 2.5, "x", None, True]
    }


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (None, "null"),
        (True, "boolean"),
        (1, "number"),
        (1.5, "number"),
        ("s", "string"),
        ([], "array"),
        ({}, "object"),
    ],
)
def test_json_type_names(value: object, name: str) -> None:
    """Error messages name JSON types, not Python ones."""
    assert strictjson.json_type(value) == name


def test_dumps_falls_back_for_lone_surrogates() -> None:
    """A string orjson cannot encode still serialises (ASCII-escaped)."""
    assert json.loads(strictjson.dumps({"id": "\ud800"})) == {"id": "\ud800"}


def test_error_bytes_with_details() -> None:
    """The error body has ``error`` and, when given, ``details``."""
    assert json.loads(errors.error_bytes("bad", ["a", "b"])) == {
        "error": "bad",
        "details": ["a", "b"],
    }
    assert json.loads(errors.error_bytes("bad")) == {"error": "bad"}
