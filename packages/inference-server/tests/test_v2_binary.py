"""Open Inference Protocol: Triton's binary tensor data extension (parser, renderer, HTTP)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from inference_server.http.errors import ApiError
from inference_server.protocols.base import Call, Prediction
from inference_server.protocols.open_inference import (
    BINARY_HEADER,
    BINARY_MIMETYPE,
    InferContext,
    OpenInferenceProtocol,
    split_body,
)

from .conftest import SETOSA, VIRGINICA

INFER = "/v2/models/iris/infer"
DTYPES = {"FP32": "<f4", "FP64": "<f8"}


def binary_request(
    rows: Any,
    datatype: str = "FP32",
    *,
    outputs: list[dict[str, Any]] | None = None,
    parameters: dict[str, Any] | None = None,
    size: int | None = None,
    shape: list[int] | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A body laid out as tritonclient.http lays it out: JSON header, then raw tensor bytes."""
    raw = np.asarray(rows, dtype=DTYPES[datatype]).tobytes()
    array = np.asarray(rows)
    tensor = {
        "name": "input-0",
        "shape": shape or list(array.shape),
        "datatype": datatype,
        "parameters": {"binary_data_size": len(raw) if size is None else size},
    }
    document: dict[str, Any] = {"inputs": [tensor]}
    if outputs is not None:
        document["outputs"] = outputs
    if parameters is not None:
        document["parameters"] = parameters
    header = json.dumps(document).encode()
    return header + raw, {BINARY_HEADER: str(len(header))}


def read_answer(headers: Any, body: bytes) -> dict[str, Any]:
    """The answer's JSON header with each binary output decoded into ``data``."""
    length = int(headers[BINARY_HEADER])
    document = json.loads(body[:length])
    offset = length
    for output in document["outputs"]:
        size = output.get("parameters", {}).get("binary_data_size")
        if size is None:
            continue
        dtype = {"INT64": "<i8", "FP32": "<f4", "FP64": "<f8"}[output["datatype"]]
        output["data"] = np.frombuffer(body[offset : offset + size], dtype=dtype).tolist()
        offset += size
    assert offset == len(body)
    return document


# --- The parser and renderer, directly ---

PROTOCOL = OpenInferenceProtocol("iris", 4)


@settings(max_examples=60, deadline=None)
@given(
    datatype=st.sampled_from(["FP32", "FP64"]),
    rows=st.integers(1, 50).flatmap(
        lambda n: hnp.arrays(
            np.float64, (n, 4), elements=st.floats(-1e6, 1e6, allow_nan=False, width=32)
        )
    ),
)
def test_parse_returns_the_sent_matrix(datatype: str, rows: np.ndarray) -> None:
    """Raw little-endian bytes come back as the same (n, 4) matrix, whatever the values."""
    body, headers = binary_request(rows, datatype)
    call = PROTOCOL.parse(body, headers)
    assert isinstance(call.rows, np.ndarray)
    assert call.rows.shape == rows.shape
    np.testing.assert_array_equal(call.rows, rows.astype(DTYPES[datatype]))


@settings(max_examples=40, deadline=None)
@given(
    indices=st.lists(st.integers(0, 2), min_size=1, max_size=40),
    binary=st.tuples(st.booleans(), st.booleans()),
)
def test_render_round_trips(indices: list[int], binary: tuple[bool, bool]) -> None:
    """Binary outputs decode to the model's values; JSON ones stay JSON in the same answer."""
    proba = np.random.default_rng(len(indices)).random((len(indices), 3))
    prediction = Prediction(
        np.array(indices, dtype=np.int64), proba, ("setosa", "versicolor", "virginica")
    )
    context = InferContext("r1", ("predict", "predict_proba"), binary)
    answer = PROTOCOL.render(Call(None, True, context), prediction)
    headers = dict(answer.headers)
    if not any(binary):
        assert BINARY_HEADER not in headers
        return
    assert headers["Content-Type"] == BINARY_MIMETYPE
    document = read_answer(headers, answer.body)
    assert document["id"] == "r1"
    predict, probabilities = document["outputs"]
    assert predict["data"] == indices
    assert predict["datatype"] == "INT64"
    assert probabilities["shape"] == [len(indices), 3]
    np.testing.assert_allclose(probabilities["data"], proba.ravel(), rtol=0, atol=0)
    for output, as_binary in zip(document["outputs"], binary, strict=True):
        assert ("parameters" in output) == as_binary


def _bad(body: bytes, headers: dict[str, str]) -> ApiError:
    with pytest.raises(ApiError) as caught:
        PROTOCOL.parse(body, headers)
    return caught.value


def test_header_length_past_the_body_is_refused() -> None:
    """A header length beyond the body is a 400, and nothing is sliced from it."""
    body, _ = binary_request([SETOSA])
    error = _bad(body, {BINARY_HEADER: str(len(body) + 1)})
    assert error.status == 400
    assert "only" in error.message


@pytest.mark.parametrize("value", ["-1", "abc", "1e3", "", "9" * 5000, "+5", "٣"])
def test_header_length_must_be_a_plain_integer(value: str) -> None:
    """Negative, non-decimal or absurdly long lengths are 400s (never an int() of 5000 digits)."""
    body, _ = binary_request([SETOSA])
    assert _bad(body, {BINARY_HEADER: value}).status == 400


def test_split_body_without_header_is_plain_json() -> None:
    """No header: the whole body is JSON and there is no binary part."""
    assert split_body(b"{}", {}) == (b"{}", None)


# --- Over HTTP (Flask test client: the same WSGI core as Gunicorn) ---


@pytest.mark.parametrize("datatype", ["FP32", "FP64"])
def test_binary_in_binary_out(client: FlaskClient, datatype: str) -> None:
    """The layout of tritonclient's defaults: binary input, binary outputs (binary_data_output)."""
    body, headers = binary_request(
        [SETOSA, VIRGINICA],
        datatype,
        outputs=[{"name": "predict"}, {"name": "predict_proba"}],
        parameters={"binary_data_output": True},
    )
    response = client.post(INFER, data=body, headers=headers)
    assert response.status_code == 200, response.data[:300]
    assert response.headers["Content-Type"] == BINARY_MIMETYPE
    document = read_answer(response.headers, response.data)
    predict, proba = document["outputs"]
    assert predict["data"] == [0, 2]
    assert proba["shape"] == [2, 3]
    np.testing.assert_allclose(np.reshape(proba["data"], (2, 3)).sum(axis=1), 1.0)
    # The same rows over JSON give the same probabilities.
    reference = client.post(
        INFER,
        json={
            "inputs": [
                {
                    "name": "input-0",
                    "shape": [2, 4],
                    "datatype": datatype,
                    "data": np.asarray([SETOSA, VIRGINICA], DTYPES[datatype]).tolist(),
                }
            ],
            "outputs": [{"name": "predict_proba"}],
        },
    ).get_json()
    assert proba["datatype"] == reference["outputs"][0]["datatype"] == datatype
    # Binary: the exact values; JSON: each one's shortest form, which reads back the same.
    dtype = DTYPES[datatype]
    assert np.asarray(reference["outputs"][0]["data"], dtype).tolist() == proba["data"]


def test_binary_in_json_out(client: FlaskClient) -> None:
    """Binary input without binary outputs asked: a plain JSON answer, no extension header."""
    body, headers = binary_request([SETOSA], "FP64")
    response = client.post(INFER, data=body, headers=headers)
    assert response.status_code == 200
    assert BINARY_HEADER not in response.headers
    assert response.get_json()["outputs"][0]["data"] == [0]


def test_json_in_binary_out(client: FlaskClient) -> None:
    """A JSON request may ask one output in binary form."""
    response = client.post(
        INFER,
        json={
            "inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": SETOSA}],
            "outputs": [{"name": "predict", "parameters": {"binary_data": True}}],
        },
    )
    assert response.status_code == 200
    assert read_answer(response.headers, response.data)["outputs"][0]["data"] == [0]


def test_octet_stream_content_type_is_accepted(client: FlaskClient) -> None:
    """application/octet-stream is the binary body's own media type."""
    body, headers = binary_request([SETOSA])
    response = client.post(INFER, data=body, headers=headers, content_type=BINARY_MIMETYPE)
    assert response.status_code == 200


def _binary(rows: Any, datatype: str = "FP32", **kwargs: Any) -> tuple[bytes, dict[str, str]]:
    return binary_request(rows, datatype, **kwargs)


def _with_tail(extra: bytes) -> tuple[bytes, dict[str, str]]:
    body, headers = binary_request([SETOSA])
    return body + extra, headers


def _short() -> tuple[bytes, dict[str, str]]:
    body, headers = binary_request([SETOSA])
    return body[:-4], headers


def _header_only(document: dict[str, Any], tail: bytes = b"") -> tuple[bytes, dict[str, str]]:
    header = json.dumps(document).encode()
    return header + tail, {BINARY_HEADER: str(len(header))}


_TENSOR = {"name": "input-0", "shape": [1, 4], "datatype": "FP32"}

BAD_BINARY: list[Any] = [
    pytest.param(lambda: _binary([SETOSA], size=15), 400, id="size-not-shape-x-datatype"),
    pytest.param(lambda: _binary([SETOSA], size=-16), 400, id="size-negative"),
    pytest.param(lambda: _binary([SETOSA], size=10**15), 400, id="size-huge-claim"),
    pytest.param(lambda: _binary([SETOSA], shape=[1000000, 4]), 400, id="shape-claims-more-rows"),
    pytest.param(lambda: _with_tail(b"\0" * 8), 400, id="sizes-short-of-body"),
    pytest.param(_short, 400, id="body-short-of-sizes"),
    pytest.param(
        lambda: _header_only(
            {"inputs": [{**_TENSOR, "datatype": "INT64", "parameters": {"binary_data_size": 32}}]},
            b"\0" * 32,
        ),
        400,
        id="datatype-int64",
    ),
    pytest.param(
        lambda: _header_only(
            {"inputs": [{**_TENSOR, "datatype": "FP16", "parameters": {"binary_data_size": 8}}]},
            b"\0" * 8,
        ),
        400,
        id="datatype-fp16",
    ),
    pytest.param(
        lambda: _header_only(
            {"inputs": [{**_TENSOR, "data": SETOSA, "parameters": {"binary_data_size": 16}}]},
            b"\0" * 16,
        ),
        400,
        id="data-and-size",
    ),
    pytest.param(
        lambda: _header_only({"inputs": [{**_TENSOR, "parameters": {"binary_data_size": True}}]}),
        400,
        id="size-bool",
    ),
    pytest.param(
        lambda: _header_only({"inputs": [{**_TENSOR, "data": SETOSA}]}, b"\0" * 16),
        400,
        id="bytes-but-no-binary-input",
    ),
    pytest.param(lambda: _binary([[float("nan"), 1, 1, 1]]), 400, id="nan"),
    pytest.param(lambda: _binary([[float("inf"), 1, 1, 1]], "FP64"), 400, id="inf"),
    pytest.param(lambda: _binary([[-float("inf"), 1, 1, 1]]), 400, id="minus-inf"),
    pytest.param(lambda: _binary([[2e305, 1, 1, 1]], "FP64"), 400, id="out-of-range"),
    pytest.param(
        lambda: (b"\xff\xfe" + b"\0" * 16, {BINARY_HEADER: "2"}), 400, id="header-not-json"
    ),
]


@pytest.mark.parametrize(("make", "status"), BAD_BINARY)
def test_bad_binary_is_a_json_4xx(
    client: FlaskClient, make: Callable[[], tuple[bytes, dict[str, str]]], status: int
) -> None:
    """Every malformed binary request is a 4xx with a JSON error, never a 5xx."""
    body, headers = make()
    response = client.post(INFER, data=body, headers=headers)
    assert response.status_code == status, response.data[:300]
    assert isinstance(response.get_json()["error"], str)


def test_binary_body_under_json_content_type(client: FlaskClient) -> None:
    """Binary tensors declared as application/json are refused (415)."""
    body, headers = binary_request([SETOSA])
    response = client.post(INFER, data=body, headers=headers, content_type="application/json")
    assert response.status_code == 415
    assert "error" in response.get_json()


def test_json_body_under_binary_content_type(client: FlaskClient) -> None:
    """application/octet-stream without the header cannot be read as binary tensors (400)."""
    response = client.post(
        INFER,
        data=json.dumps({"inputs": [{**_TENSOR, "data": SETOSA}]}),
        content_type=BINARY_MIMETYPE,
    )
    assert response.status_code == 400
    assert BINARY_HEADER in response.get_json()["error"]


def test_more_rows_than_the_limit(make_app: Callable[..., Flask]) -> None:
    """The library's row limit applies to binary tensors too (413)."""
    app = make_app(MAX_ROWS=3)
    body, headers = binary_request([SETOSA] * 4)
    response = app.test_client().post(INFER, data=body, headers=headers)
    assert response.status_code == 413
    assert "error" in response.get_json()
