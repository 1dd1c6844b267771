"""Which model a replica serves: its version and digest in V1/V2 metadata, answers and metrics."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

import iris_model

from .conftest import SETOSA, VIRGINICA

VERSION = "2.1.0"
V2 = "/v2/models/iris"
BODY = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": SETOSA}]}
TOKEN = "identity-test-token"  # noqa: S105 - a test token


@pytest.fixture(scope="module")
def versioned_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved model with its own version, as an image build writes it."""
    directory = tmp_path_factory.mktemp("versioned")
    iris_model.save(iris_model.train(seed=7).model, directory, version=VERSION)
    return directory


@pytest.fixture
def versioned(make_app: Callable[..., Flask], versioned_dir: Path) -> Flask:
    """An app serving the versioned model."""
    return make_app(MODEL_DIR=str(versioned_dir))


def test_v2_metadata_lists_the_version(versioned: Flask) -> None:
    """``versions`` holds the served model's version, and only it."""
    metadata = versioned.test_client().get(V2).get_json()
    assert metadata["versions"] == [VERSION]
    assert metadata["name"] == "iris"


def test_v2_metadata_without_a_version_has_no_versions(client: FlaskClient) -> None:
    """A model trained at start-up has no version: no ``versions`` key (it is optional)."""
    assert "versions" not in client.get(V2).get_json()


def test_infer_names_the_model_version(versioned: Flask) -> None:
    """Each V2 answer carries ``model_version`` (what the rollout test reads), JSON or binary."""
    client = versioned.test_client()
    answer = client.post(f"{V2}/infer", json=BODY)
    assert answer.status_code == 200, answer.text
    assert answer.get_json()["model_version"] == VERSION
    assert answer.get_json()["model_name"] == "iris"
    binary = client.post(f"{V2}/infer", json={**BODY, "parameters": {"binary_data_output": True}})
    assert binary.status_code == 200, binary.text
    length = int(binary.headers["Inference-Header-Content-Length"])
    assert json.loads(binary.data[:length])["model_version"] == VERSION


def test_infer_without_a_version_has_no_model_version(client: FlaskClient) -> None:
    """No version known: the field is left out, as the protocol allows."""
    answer = client.post(f"{V2}/infer", json=BODY).get_json()
    assert "model_version" not in answer


def test_the_served_version_routes_answer(versioned: Flask) -> None:
    """Metadata, readiness and infer under ``/versions/<served version>``."""
    client = versioned.test_client()
    base = f"{V2}/versions/{VERSION}"
    assert client.get(base).get_json() == client.get(V2).get_json()
    assert client.get(f"{base}/ready").get_json() == {"name": "iris", "ready": True}
    answer = client.post(
        f"{base}/infer",
        json={"inputs": [{**BODY["inputs"][0], "shape": [2, 4], "data": [SETOSA, VIRGINICA]}]},
    )
    assert answer.status_code == 200, answer.text
    assert answer.get_json()["outputs"][0]["data"] == [0, 2]
    assert answer.get_json()["model_version"] == VERSION


@pytest.mark.parametrize("suffix", ["", "/ready", "/infer"])
@pytest.mark.parametrize("version", ["1.0.0", "2.1.0-other", "x" * 256])
def test_other_versions_are_404_json(versioned: Flask, suffix: str, version: str) -> None:
    """Any other version: 404 with a JSON error naming the served one, the echo bounded."""
    client = versioned.test_client()
    path = f"{V2}/versions/{version}{suffix}"
    response = client.post(path, json=BODY) if suffix == "/infer" else client.get(path)
    assert response.status_code == 404
    error = response.get_json()["error"]
    assert VERSION in error or len(version) > 200
    assert len(error) <= 300


@pytest.mark.parametrize("suffix", ["", "/ready", "/infer"])
def test_a_version_over_256_bytes_is_400_naming_it(versioned: Flask, suffix: str) -> None:
    """A version in the path longer than 256 bytes is refused, not echoed."""
    client = versioned.test_client()
    path = f"{V2}/versions/{'é' * 129}{suffix}"  # 129 characters, 258 bytes
    response = client.post(path, json=BODY) if suffix == "/infer" else client.get(path)
    assert response.status_code == 400
    assert response.get_json() == {
        "error": "the model version in the path is longer than 256 bytes"
    }


def test_no_version_routes_without_a_version(client: FlaskClient) -> None:
    """A model without a version has no version routes: every one is 404 JSON."""
    for path in (f"{V2}/versions/1.0.0", f"{V2}/versions/1.0.0/ready"):
        response = client.get(path)
        assert response.status_code == 404
        assert "has no versions" in response.get_json()["error"]
    assert client.post(f"{V2}/versions/1.0.0/infer", json=BODY).status_code == 404


def test_versioned_infer_needs_the_token(
    make_app: Callable[..., Flask], versioned_dir: Path
) -> None:
    """With auth on, the versioned infer route is a prediction route like the others."""
    app = make_app(MODEL_DIR=str(versioned_dir), AUTH_TOKENS=TOKEN)
    client = app.test_client()
    path = f"{V2}/versions/{VERSION}/infer"
    assert client.post(path, json=BODY).status_code == 401
    authorized = client.post(path, json=BODY, headers={"Authorization": f"Bearer {TOKEN}"})
    assert authorized.status_code == 200
    document = app.test_client().get("/openapi.json").get_json()
    assert document["paths"][f"{V2}/versions/{{version}}/infer"]["post"]["security"]


def test_v1_metadata_shows_version_and_digest(versioned: Flask) -> None:
    """``/v1/models/iris``: ready, plus the model version and the directory digest."""
    model = versioned.extensions["iris_model"]
    document = versioned.test_client().get("/v1/models/iris").get_json()
    assert document == {
        "name": "iris",
        "ready": True,
        "model_version": VERSION,
        "digest": model.digest,
    }
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", document["digest"])


def test_v1_metadata_of_a_trained_model(client: FlaskClient) -> None:
    """Trained at start-up: no version or digest to show."""
    assert client.get("/v1/models/iris").get_json() == {"name": "iris", "ready": True}


def _model_info(app: Flask) -> dict[str, str]:
    text = app.test_client().get("/metrics").get_data(as_text=True)
    (sample,) = (
        sample
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "inference_model_info"
    )
    return dict(sample.labels)


def test_model_info_labels_version_and_digest(
    versioned: Flask, make_app: Callable[..., Flask]
) -> None:
    """``model_info`` keeps its labels and adds the model version and directory digest."""
    model = versioned.extensions["iris_model"]
    labels = _model_info(versioned)
    assert labels["model_version"] == VERSION
    assert labels["digest"] == model.digest
    assert labels["sha256"] == model.sha256
    assert {"sklearn_version", "iris_model_version", "server_version"} <= labels.keys()
    trained = _model_info(make_app())
    assert (trained["model_version"], trained["digest"]) == ("none", "unsaved")


def test_version_routes_keep_metric_labels_bounded(versioned: Flask) -> None:
    """Requests for many invented versions add one route label, not one per version."""
    client = versioned.test_client()
    for k in range(50):
        client.get(f"{V2}/versions/v{k}")
    text = client.get("/metrics").get_data(as_text=True)
    routes = set(re.findall(r'route="([^"]*versions[^"]*)"', text))
    assert routes == {f"{V2}/versions/{{version}}"}
