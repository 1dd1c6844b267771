"""Any model the library can wrap is served: shapes, names and labels come from the model.

Two models trained on other datasets that ship with scikit-learn, built in memory: wine
(13 features, 3 classes, served as ``wine``) and breast cancer (30 features, 2 classes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import iris_model

WINE_CLASSES = ("barolo", "grignolino", "barbera")


@pytest.fixture(scope="module")
def wine() -> tuple[iris_model.IrisModel, np.ndarray, np.ndarray]:
    """A wine classifier (13 features, 3 named classes) and its data."""
    data = load_wine()
    estimator = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    estimator.fit(data.data, data.target)
    model = iris_model.IrisModel(estimator, feature_names=data.feature_names, classes=WINE_CLASSES)
    return model, data.data, data.target


@pytest.fixture
def wine_client(
    make_app: Callable[..., Flask], wine: tuple[iris_model.IrisModel, Any, Any]
) -> FlaskClient:
    """The wine model served under the name ``wine``."""
    return make_app(MODEL_NAME="wine", model=wine[0]).test_client()


def _tensor(rows: list[list[float]]) -> dict[str, Any]:
    flat = [value for row in rows for value in row]
    return {"name": "input-0", "shape": [len(rows), len(rows[0])], "datatype": "FP64", "data": flat}


def test_seed_predict_uses_the_models_labels(
    wine_client: FlaskClient, wine: tuple[iris_model.IrisModel, Any, Any]
) -> None:
    """/predict answers the wine classes by name, with labelled probabilities."""
    model, x, y = wine
    expected = model.predict(x[[0, 60, 140]]).tolist()
    assert expected == y[[0, 60, 140]].tolist() == [0, 1, 2]
    body = wine_client.post(
        "/predict", json={"instances": x[[0, 60, 140]].tolist(), "probabilities": True}
    ).get_json()
    assert body["predictions"] == [0, 1, 2]
    assert body["labels"] == list(WINE_CLASSES)
    assert set(body["probabilities"][0]) == set(WINE_CLASSES)
    single = wine_client.post("/predict", json={"features": x[140].tolist()}).get_json()
    assert single == {"prediction": 2, "label": "barbera"}


def test_seed_refuses_iris_sized_rows(wine_client: FlaskClient) -> None:
    """A 4-value row is a 400 that names the model's feature count."""
    response = wine_client.post("/predict", json={"features": [5.1, 3.5, 1.4, 0.2]})
    assert response.status_code == 400
    assert "13" in response.get_json()["error"]


def test_kserve_v1_under_the_model_name(
    wine_client: FlaskClient, wine: tuple[iris_model.IrisModel, Any, Any]
) -> None:
    """V1 lists, readies and predicts under the configured name; iris is unknown."""
    _model, x, _y = wine
    assert wine_client.get("/v1/models").get_json() == {"models": ["wine"]}
    assert wine_client.get("/v1/models/wine").get_json() == {"name": "wine", "ready": True}
    response = wine_client.post("/v1/models/wine:predict", json={"instances": x[[0, 140]].tolist()})
    assert response.get_json() == {"predictions": [0, 2]}
    assert wine_client.post("/v1/models/iris:predict", json={"instances": [[1]]}).status_code == 404


def test_open_inference_metadata_is_the_models(wine_client: FlaskClient) -> None:
    """V2 metadata: 13 named features, 3 classes, under /v2/models/wine."""
    metadata = wine_client.get("/v2/models/wine").get_json()
    assert metadata["name"] == "wine"
    (tensor,) = metadata["inputs"]
    assert tensor["shape"] == [-1, 13]
    assert tensor["parameters"]["feature_names"] == list(load_wine().feature_names)
    outputs = {o["name"]: o for o in metadata["outputs"]}
    assert outputs["predict_proba"]["shape"] == [-1, 3]
    assert outputs["predict"]["parameters"]["classes"] == list(WINE_CLASSES)
    assert wine_client.get("/v2/models/wine/ready").status_code == 200
    assert wine_client.get("/v2/models/iris").status_code == 404


def test_open_inference_infer(
    wine_client: FlaskClient, wine: tuple[iris_model.IrisModel, Any, Any]
) -> None:
    """V2 infer takes [n, 13] tensors and answers [n] classes and [n, 3] probabilities."""
    model, x, _y = wine
    rows = x[[0, 140]].tolist()
    body = wine_client.post(
        "/v2/models/wine/infer",
        json={
            "inputs": [_tensor(rows)],
            "outputs": [{"name": "predict"}, {"name": "predict_proba"}],
        },
    ).get_json()
    assert body["model_name"] == "wine"
    predict, proba = body["outputs"]
    assert predict["data"] == [0, 2]
    assert proba["shape"] == [2, 3]
    assert np.allclose(proba["data"], model.predict_proba(rows).ravel())


def test_open_inference_refuses_the_wrong_width(wine_client: FlaskClient) -> None:
    """A [1, 4] tensor is a 400 that states the expected [n, 13]."""
    response = wine_client.post(
        "/v2/models/wine/infer", json={"inputs": [_tensor([[5.1, 3.5, 1.4, 0.2]])]}
    )
    assert response.status_code == 400
    assert "[n, 13]" in response.get_json()["error"]


def test_openapi_describes_the_model(wine_client: FlaskClient) -> None:
    """The OpenAPI document states 13-value rows, the wine labels and the wine paths."""
    document = wine_client.get("/openapi.json").get_json()
    schemas = document["components"]["schemas"]
    assert (schemas["Row"]["minItems"], schemas["Row"]["maxItems"]) == (13, 13)
    labels = schemas["PredictResponse"]["oneOf"][0]["properties"]["label"]["enum"]
    assert labels == list(WINE_CLASSES)
    assert {"/v1/models/wine:predict", "/v2/models/wine/infer"} <= set(document["paths"])
    assert not any("iris" in path for path in document["paths"])


def test_metrics_count_the_models_classes(
    wine_client: FlaskClient, wine: tuple[iris_model.IrisModel, Any, Any]
) -> None:
    """inference_predictions_total is labelled with the model's class names."""
    _model, x, _y = wine
    wine_client.post("/predict", json={"instances": x[[0, 1, 140]].tolist()})
    text = wine_client.get("/metrics").get_data(as_text=True)
    counts = {
        sample.labels["class_name"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "inference_predictions_total"
    }
    assert counts == {"barolo": 2, "grignolino": 0, "barbera": 1}


def test_binary_random_forest(make_app: Callable[..., Flask]) -> None:
    """A two-class forest (30 features, the estimator's own scorer) over every protocol."""
    data = load_breast_cancer()
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(data.data, data.target)
    model = iris_model.IrisModel(
        forest, feature_names=data.feature_names, classes=tuple(data.target_names)
    )
    client = make_app(model=model).test_client()
    rows = data.data[:2].tolist()
    expected = forest.predict(data.data[:2]).tolist()
    seed = client.post("/predict", json={"instances": rows}).get_json()
    assert seed["labels"] == [str(data.target_names[i]) for i in expected]
    v1 = client.post("/v1/models/iris:predict", json={"instances": rows}).get_json()
    assert v1 == {"predictions": expected}
    v2 = client.post(
        "/v2/models/iris/infer",
        json={"inputs": [_tensor(rows)], "outputs": [{"name": "predict_proba"}]},
    ).get_json()
    assert v2["outputs"][0]["shape"] == [2, 2]
    metadata = client.get("/v2/models/iris").get_json()
    assert metadata["inputs"][0]["shape"] == [-1, 30]


def test_a_forest_trained_on_your_data_saves_loads_and_serves(
    make_app: Callable[..., Flask], tmp_path: Any
) -> None:
    """The notebook path end to end: train(X, y, estimator=forest), save, serve the directory."""
    data = load_wine()  # no pandas here: the server and its tests do without it
    labels = np.array(WINE_CLASSES)[data.target]
    result = iris_model.train(
        data.data,
        labels,
        feature_names=data.feature_names,
        estimator=RandomForestClassifier(n_estimators=20, random_state=0),
    )
    saved = iris_model.save(result.model, tmp_path / "wine", version="2.0.0")
    client = make_app(MODEL_DIR=str(saved), MODEL_NAME="wine").test_client()
    rows = data.data[[0, 60, 140]].tolist()
    expected = result.model.predict_labels(rows)
    seed = client.post("/predict", json={"instances": rows}).get_json()
    assert seed["labels"] == list(expected)
    v2 = client.post("/v2/models/wine/infer", json={"inputs": [_tensor(rows)]}).get_json()
    assert v2["model_version"] == "2.0.0"
    assert [result.model.classes[i] for i in v2["outputs"][0]["data"]] == list(expected)
