"""Bodies built to cost a worker CPU are refused (400) before the full decode.

A body with more objects, keys or strings than any protocol accepts is refused from byte
counts; valid requests keep their answers. No timed asserts: CPU figures belong in benches.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from inference_server.http.errors import ApiError
from inference_server.protocols.base import MAX_KEYS, MAX_OBJECTS, MAX_STRINGS, check_structure

ROUTES = ("/predict", "/v1/models/iris:predict", "/v2/models/iris/infer")
MIB = 1024 * 1024


def _many(item: bytes, prefix: bytes = b"{", suffix: bytes = b"}", size: int = MIB - 64) -> bytes:
    return (
        prefix
        + b",".join([item] * ((size - len(prefix) - len(suffix)) // (len(item) + 1)))
        + suffix
    )


WORST = {
    "distinct keys": b"{" + b",".join(b'"k%d":0' % i for i in range(90_000)) + b"}",
    "duplicate keys": _many(b'"a":0'),
    "empty objects as rows": _many(b"{}", b'{"instances":[', b"]}"),
    "objects in parameters": _many(b'{"x":1}', b'{"parameters":{"p":[', b"]}}"),
    "colons outside strings": _many(b'{"a":{"b":0}}', b'{"instances":[', b"]}"),
}


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("name", sorted(WORST))
def test_worst_case_bodies_get_a_json_400(client: FlaskClient, route: str, name: str) -> None:
    response = client.post(route, data=WORST[name], content_type="application/json")
    assert response.status_code == 400, response.get_data()[:200]
    message = response.get_json()["error"]
    assert "are accepted" in message
    assert len(message) < 200


@pytest.mark.parametrize("route", ROUTES)
def test_many_small_arrays_get_413_like_a_batch_over_the_row_limit(
    client: FlaskClient, route: str
) -> None:
    body = _many(b"[]", b'{"instances":[', b"]}")
    response = client.post(route, data=body, content_type="application/json")
    assert response.status_code == 413, response.get_data()[:200]
    assert "JSON arrays" in response.get_json()["error"]


@pytest.mark.parametrize("route", ROUTES)
def test_deep_nesting_keeps_its_400(client: FlaskClient, route: str) -> None:
    depth = MIB // 2 - 16
    response = client.post(route, data=b"[" * depth + b"]" * depth, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"] == "request body is nested too deeply"


def test_the_array_bound_follows_the_row_limit(make_app: Callable[..., Flask]) -> None:
    client = make_app(MAX_ROWS=5).test_client()
    rows = [[5.1, 3.5, 1.4, 0.2]] * 5
    ok = client.post("/predict", json={"instances": rows})
    assert ok.status_code == 200
    over = client.post(
        "/predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]] * (5 + MAX_OBJECTS + 1)}
    )
    assert over.status_code == 413
    assert "at most 5 rows" in over.get_json()["error"]


def test_braces_colons_and_quotes_inside_strings_do_not_count(client: FlaskClient) -> None:
    """A valid body whose strings are full of ``{``, ``:`` and escaped quotes is answered 200.

    (Strings of at most 256 bytes each: longer ones are refused where the protocol keeps them.)
    """
    notes = ['{:\\"' * 50] * ((MAX_KEYS + MAX_OBJECTS) // 50 + 1)
    body = {
        "id": '{:\\"' * 50,
        "parameters": {"notes": notes},
        "inputs": [
            {"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}
        ],
    }
    response = client.post(
        "/v2/models/iris/infer", data=json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 200, response.get_data()[:200]
    assert response.get_json()["id"] == body["id"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"[" + b"{}," * MAX_OBJECTS + b"{}]", "JSON objects"),
        (
            b'{"x":[' + b"{}," * (MAX_OBJECTS - 2) + b"{}]," + b'"a":0,' * MAX_KEYS + b'"b":0}',
            "keys",
        ),
        (b"[" + b'"s",' * MAX_STRINGS + b'"s"]' + b":" * (MAX_KEYS + 1), "JSON strings"),
    ],
)
def test_each_bound_names_itself(body: bytes, fragment: str) -> None:
    with pytest.raises(ApiError) as raised:
        check_structure(body)
    assert raised.value.status == 400
    assert fragment in raised.value.message


def test_bodies_at_the_bounds_pass() -> None:
    check_structure(b"[" + b"{}," * (MAX_OBJECTS - 1) + b"{}]")
    check_structure(b"{" + b'"a":0,' * (MAX_KEYS - 1) + b'"b":0}')
