"""The HTTP contract, answered by the container (hardened: read-only root, tmpfs /tmp)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import tritonclient.http as httpclient

if TYPE_CHECKING:
    from conftest import Server

pytestmark = pytest.mark.container

SETOSA = [5.1, 3.5, 1.4, 0.2]
VERSICOLOR = [7.0, 3.2, 4.7, 1.4]
VIRGINICA = [6.3, 3.3, 6.0, 2.5]


def test_seed_health_is_plain_ok(server: Server) -> None:
    response = server.get("/")
    assert response.status_code == 200
    assert response.text == "OK"


def test_seed_predict_returns_an_int_class(server: Server) -> None:
    response = server.post("/predict", json={"features": SETOSA})
    assert response.status_code == 200
    body = response.json()
    assert type(body["prediction"]) is int
    assert body["prediction"] == 0
    assert body["label"] == "setosa"


def test_seed_batch(server: Server) -> None:
    response = server.post("/predict", json={"instances": [SETOSA, VERSICOLOR, VIRGINICA]})
    assert response.status_code == 200
    assert response.json()["predictions"] == [0, 1, 2]


def test_kserve_v1(server: Server) -> None:
    assert server.get("/v1/models").json() == {"models": ["iris"]}
    metadata = server.get("/v1/models/iris").json()
    assert {key: metadata[key] for key in ("name", "ready")} == {"name": "iris", "ready": True}
    # The baked model names its version (the image's) and its directory digest.
    assert metadata["model_version"]
    assert metadata["digest"].startswith("sha256:")
    response = server.post("/v1/models/iris:predict", json={"instances": [VIRGINICA, SETOSA]})
    assert response.status_code == 200
    assert response.json() == {"predictions": [2, 0]}


def test_open_inference_protocol_v2(server: Server) -> None:
    assert server.get("/v2/health/live").status_code == 200
    assert server.get("/v2/health/ready").status_code == 200
    assert server.get("/v2/models/iris/ready").status_code == 200
    metadata = server.get("/v2/models/iris").json()
    assert metadata["inputs"][0]["shape"] == [-1, 4]
    request = {
        "id": "container-test",
        "inputs": [
            {"name": "input-0", "shape": [2, 4], "datatype": "FP64", "data": VERSICOLOR + SETOSA}
        ],
        "outputs": [{"name": "predict"}, {"name": "predict_proba"}],
    }
    response = server.post("/v2/models/iris/infer", json=request)
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == "container-test"
    outputs = {output["name"]: output for output in body["outputs"]}
    assert outputs["predict"]["data"] == [1, 0]
    probabilities = outputs["predict_proba"]["data"]
    assert outputs["predict_proba"]["shape"] == [2, 3]
    assert sum(probabilities[:3]) == pytest.approx(1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["FP32", "FP64"])
def test_tritonclient_defaults_binary_tensors(server: Server, dtype: type) -> None:
    """tritonclient.http with default arguments: binary inputs and outputs, proba included."""
    client = httpclient.InferenceServerClient(url=server.url.removeprefix("http://"))
    try:
        rows = np.array([VERSICOLOR, SETOSA], dtype=dtype)
        tensor = httpclient.InferInput(
            "input-0", list(rows.shape), np.dtype(dtype).name.replace("float", "FP")
        )
        tensor.set_data_from_numpy(rows)
        outputs = [
            httpclient.InferRequestedOutput("predict"),
            httpclient.InferRequestedOutput("predict_proba"),
        ]
        result = client.infer("iris", [tensor], outputs=outputs)
        assert result.get_output("predict")["parameters"]["binary_data_size"] == 2 * 8
        assert result.as_numpy("predict").tolist() == [1, 0]
        proba = result.as_numpy("predict_proba")
        assert proba.dtype == dtype  # probabilities come in the input's datatype
        assert proba.shape == (2, 3)
        assert proba.sum(axis=1) == pytest.approx([1.0, 1.0], rel=1e-6)
    finally:
        client.close()


def test_probes(server: Server) -> None:
    assert server.get("/healthz").status_code == 200
    ready = server.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}


def test_metrics_are_aggregated_across_workers_on_the_tmpfs(server: Server) -> None:
    # Multiprocess metrics live in files under PROMETHEUS_MULTIPROC_DIR (/tmp): this only
    # works because /tmp is the one writable place. Enough requests to reach both workers.
    for _ in range(20):
        assert server.post("/predict", json={"features": VIRGINICA}).status_code == 200
    response = server.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    pattern = r'^inference_predictions_total\{class_name="virginica"\} (\S+)$'
    match = re.search(pattern, response.text, re.MULTILINE)
    assert match, response.text[:2000]
    assert float(match.group(1)) >= 20
    assert "inference_model_info{" in response.text


JSON = {"Content-Type": "application/json"}
BAD_REQUESTS: list[tuple[str, dict[str, Any], int]] = [
    ("not json", {"data": b"{not json", "headers": JSON}, 400),
    ("wrong content type", {"data": b"features=1", "headers": {"Content-Type": "text/plain"}}, 415),
    ("NaN literal", {"data": b'{"features": [NaN, 1, 2, 3]}', "headers": JSON}, 400),
    ("three features", {"json": {"features": [1.0, 2.0, 3.0]}}, 400),
    ("string feature", {"json": {"features": [1.0, "abc", 3.0, 4.0]}}, 400),
    ("boolean feature", {"json": {"features": [True, 2.0, 3.0, 4.0]}}, 400),
    ("null feature", {"json": {"features": [None, 2.0, 3.0, 4.0]}}, 400),
    ("unknown key", {"json": {"features": SETOSA, "extra": 1}}, 400),
    ("top-level array", {"json": [SETOSA]}, 400),
    ("deep nesting", {"data": b"[" * 5000 + b"]" * 5000, "headers": JSON}, 400),
    ("over the body limit", {"json": {"instances": [SETOSA] * 60_000}}, 413),
]


@pytest.mark.parametrize(
    ("case", "kwargs", "status"), BAD_REQUESTS, ids=[case[0] for case in BAD_REQUESTS]
)
def test_bad_input_is_a_4xx_json_error(
    server: Server, case: str, kwargs: dict[str, Any], status: int
) -> None:
    response = server.post("/predict", **kwargs)
    assert response.status_code == status, response.text[:500]
    assert response.headers["Content-Type"].startswith("application/json")
    assert isinstance(response.json()["error"], str)


def test_wrong_method_and_unknown_route(server: Server) -> None:
    response = server.get("/predict")
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    assert isinstance(response.json()["error"], str)
    assert server.get("/no/such/route").status_code == 404


def test_server_still_serves_after_bad_input(server: Server) -> None:
    assert server.post("/predict", json={"features": VERSICOLOR}).json()["prediction"] == 1
