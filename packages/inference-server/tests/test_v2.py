"""Open Inference Protocol (V2) routes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

import inference_server
import iris_model
from inference_server.http.lifecycle import LIFECYCLE_KEY

from .conftest import SETOSA, VIRGINICA

INFER = "/v2/models/iris/infer"


def tensor(
    data: list[Any], shape: list[int], datatype: str = "FP32", **extra: Any
) -> dict[str, Any]:
    return {"name": "input-0", "shape": shape, "datatype": datatype, "data": data, **extra}


def test_server_metadata(client: FlaskClient) -> None:
    """GET /v2 names the server and its version."""
    assert client.get("/v2").get_json() == {
        "name": "inference-server",
        "version": inference_server.__version__,
        "extensions": ["binary_tensor_data"],
    }


def test_health(client: FlaskClient) -> None:
    """Live and ready are 200 with JSON bodies."""
    assert client.get("/v2/health/live").get_json() == {"live": True}
    assert client.get("/v2/health/ready").get_json() == {"ready": True}
    assert client.get("/v2/models/iris/ready").get_json() == {"name": "iris", "ready": True}


def test_not_ready_once_draining(make_app: Callable[..., Flask]) -> None:
    """Server and model readiness turn 503 when shutdown begins; liveness stays 200."""
    app = make_app()
    app.extensions[LIFECYCLE_KEY].begin_shutdown()
    client = app.test_client()
    assert client.get("/v2/health/ready").status_code == 503
    assert client.get("/v2/models/iris/ready").status_code == 503
    assert client.get("/v2/health/live").status_code == 200


def test_model_metadata_is_the_real_schema(client: FlaskClient) -> None:
    """Metadata comes from the model: feature names, classes, shapes."""
    body = client.get("/v2/models/iris").get_json()
    assert body["name"] == "iris"
    assert body["platform"] == "sklearn"
    (inp,) = body["inputs"]
    assert inp["shape"] == [-1, 4]
    assert inp["parameters"]["feature_names"] == [
        "sepal length (cm)",
        "sepal width (cm)",
        "petal length (cm)",
        "petal width (cm)",
    ]
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["predict"]["datatype"] == "INT64"
    assert outputs["predict_proba"]["shape"] == [-1, 3]
    assert outputs["predict_proba"]["parameters"]["classes"] == [
        "setosa",
        "versicolor",
        "virginica",
    ]


@pytest.mark.parametrize("data", [SETOSA + VIRGINICA, [SETOSA, VIRGINICA]], ids=["flat", "nested"])
@pytest.mark.parametrize("datatype", ["FP32", "FP64"])
def test_infer_flat_or_nested(client: FlaskClient, data: list[Any], datatype: str) -> None:
    """Flat row-major and nested data give the same answer; predict is the default output."""
    response = client.post(INFER, json={"inputs": [tensor(data, [2, 4], datatype)]})
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {
        "model_name": "iris",
        "outputs": [{"name": "predict", "datatype": "INT64", "shape": [2], "data": [0, 2]}],
    }


def test_infer_both_outputs_and_id(client: FlaskClient) -> None:
    """Requested outputs come back in order, with the request id echoed."""
    body = client.post(
        INFER,
        json={
            "id": "42",
            "inputs": [tensor(SETOSA, [1, 4], parameters={"binary_data": False})],
            "outputs": [
                {"name": "predict_proba", "parameters": {"binary_data": False}},
                {"name": "predict"},
            ],
        },
    ).get_json()
    assert body["id"] == "42"
    proba, predict = body["outputs"]
    assert proba["name"] == "predict_proba"
    assert proba["datatype"] == "FP32"  # the input's datatype
    assert proba["shape"] == [1, 3]
    assert len(proba["data"]) == 3
    assert abs(sum(proba["data"]) - 1) < 1e-6
    assert predict["data"] == [0]


@pytest.mark.parametrize("datatype", ["FP32", "FP64"])
def test_probabilities_come_in_the_inputs_datatype(client: FlaskClient, datatype: str) -> None:
    """FP32 in, FP32 out (the FP64 values rounded once, written in their shortest form)."""
    body = client.post(
        INFER,
        json={"inputs": [tensor(SETOSA, [1, 4], datatype)], "outputs": [{"name": "predict_proba"}]},
    ).get_json()
    (proba,) = body["outputs"]
    assert proba["datatype"] == datatype
    full = iris_model.train(seed=42).model.predict_proba([SETOSA])[0]
    if datatype == "FP64":
        assert proba["data"] == full.tolist()
    else:
        assert proba["data"] == [float(str(v)) for v in full.astype(np.float32)]


BAD_INFER = [
    pytest.param({}, id="no-inputs"),
    pytest.param({"inputs": []}, id="zero-inputs"),
    pytest.param({"inputs": [tensor(SETOSA, [1, 4])] * 2}, id="two-inputs"),
    pytest.param({"inputs": [tensor(SETOSA, [1, 4], "INT64")]}, id="datatype"),
    pytest.param({"inputs": [tensor(SETOSA, [4])]}, id="shape-1d"),
    pytest.param({"inputs": [tensor(SETOSA, [1, 3])]}, id="shape-columns"),
    pytest.param({"inputs": [tensor(SETOSA, [0, 4])]}, id="shape-zero"),
    pytest.param({"inputs": [tensor(SETOSA, [True, 4])]}, id="shape-bool"),
    pytest.param({"inputs": [tensor(SETOSA, [2, 4])]}, id="flat-too-short"),
    pytest.param({"inputs": [tensor([SETOSA], [2, 4])]}, id="nested-too-short"),
    pytest.param({"inputs": [tensor([], [1, 4])]}, id="empty-data"),
    pytest.param({"inputs": [tensor("x", [1, 4])]}, id="data-string"),
    pytest.param({"inputs": [tensor([None, 1, 1, 1], [1, 4])]}, id="null-value"),
    pytest.param({"inputs": [{"shape": [1, 4], "datatype": "FP32", "data": SETOSA}]}, id="no-name"),
    pytest.param({"inputs": [tensor(SETOSA, [1, 4], name=3)]}, id="name-number"),
    pytest.param({"inputs": [tensor(SETOSA, [1, 4], extra=1)]}, id="tensor-extra-key"),
    pytest.param({"inputs": ["x"]}, id="tensor-not-object"),
    pytest.param(
        {"inputs": [tensor(SETOSA, [1, 4], parameters={"binary_data": True})]}, id="binary-in"
    ),
    pytest.param({"inputs": [tensor(SETOSA, [1, 4], parameters=[])]}, id="params-array"),
    pytest.param(
        {"inputs": [tensor(SETOSA, [1, 4])], "outputs": [{"name": "x"}]}, id="unknown-output"
    ),
    pytest.param(
        {"inputs": [tensor(SETOSA, [1, 4])], "outputs": [{"name": "predict"}] * 2}, id="dup-output"
    ),
    pytest.param(
        {"inputs": [tensor(SETOSA, [1, 4])], "outputs": {"name": "predict"}}, id="outputs-object"
    ),
    pytest.param(
        {
            "inputs": [tensor(SETOSA, [1, 4])],
            "outputs": [{"name": "predict", "parameters": {"binary_data": 1}}],
        },
        id="binary-out-not-bool",
    ),
    pytest.param({"inputs": [tensor(SETOSA, [1, 4])], "id": 5}, id="id-number"),
    pytest.param(
        {"inputs": [tensor(SETOSA, [1, 4])], "parameters": {"binary_data_output": "yes"}},
        id="binary-req-not-bool",
    ),
    pytest.param({"inputs": [tensor(SETOSA, [1, 4])], "extra": 1}, id="request-extra-key"),
]


@pytest.mark.parametrize("body", BAD_INFER)
def test_infer_rejects(client: FlaskClient, body: dict[str, Any]) -> None:
    """Malformed inference requests are 400 with a JSON error."""
    response = client.post(INFER, json=body)
    assert response.status_code == 400, response.get_json()
    assert isinstance(response.get_json()["error"], str)


def test_infer_empty_outputs_list_means_predict(client: FlaskClient) -> None:
    """An empty outputs list is the same as none."""
    body = client.post(INFER, json={"inputs": [tensor(SETOSA, [1, 4])], "outputs": []}).get_json()
    assert [o["name"] for o in body["outputs"]] == ["predict"]


def test_infer_over_max_rows_is_413(make_app: Callable[..., Flask]) -> None:
    """A tensor with more rows than allowed is 413."""
    client = make_app(MAX_ROWS=2).test_client()
    response = client.post(INFER, json={"inputs": [tensor(SETOSA * 3, [3, 4])]})
    assert response.status_code == 413


def test_id_over_256_bytes_is_refused_not_echoed(client: FlaskClient) -> None:
    """An ``id`` of 256 bytes is echoed; one byte more is 400 naming ``id``, never echoed."""
    body = {"inputs": [tensor(SETOSA, [1, 4])]}
    assert client.post(INFER, json={**body, "id": "x" * 256}).get_json()["id"] == "x" * 256
    for long_id in ("x" * 257, "é" * 129, "x" * 1_300_000):
        answer = client.post(INFER, json={**body, "id": long_id})
        assert answer.status_code == 400
        assert answer.get_json() == {"error": "id is longer than 256 bytes"}


@pytest.mark.parametrize(
    ("where", "field"),
    [
        ("request", "request.parameters.note"),
        ("input", "inputs[0].parameters.note"),
        ("output", "outputs[0].parameters.note"),
    ],
)
def test_parameter_strings_over_256_bytes_are_refused(
    client: FlaskClient, where: str, field: str
) -> None:
    """A parameter string (or key) over 256 bytes is 400 naming the field; 256 pass."""

    def body(parameters: dict[str, Any]) -> dict[str, Any]:
        document: dict[str, Any] = {"inputs": [tensor(SETOSA, [1, 4])]}
        if where == "request":
            document["parameters"] = parameters
        elif where == "input":
            document["inputs"][0]["parameters"] = parameters
        else:
            document["outputs"] = [{"name": "predict", "parameters": parameters}]
        return document

    assert client.post(INFER, json=body({"note": "x" * 256})).status_code == 200
    answer = client.post(INFER, json=body({"note": "x" * 257}))
    assert answer.status_code == 400
    assert answer.get_json() == {"error": f"{field} is longer than 256 bytes"}
    answer = client.post(INFER, json=body({"k" * 257: 1}))
    assert answer.status_code == 400
    assert "k" * 20 not in answer.text
    assert "parameters is longer than 256 bytes" in answer.get_json()["error"]
