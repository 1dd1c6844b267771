"""The seed routes keep their wire contract and add labels and probabilities."""

from __future__ import annotations

import math

from flask.testing import FlaskClient

from .conftest import SETOSA, VIRGINICA


def test_index_says_ok(client: FlaskClient) -> None:
    """GET / answers the plain text OK, as the seed did."""
    response = client.get("/")
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "OK"
    assert response.mimetype == "text/plain"


def test_single_row_prediction_is_an_int_with_label(client: FlaskClient) -> None:
    """{"features": row} gives an int class index and its label."""
    response = client.post("/predict", json={"features": SETOSA})
    assert response.status_code == 200
    body = response.get_json()
    assert body == {"prediction": 0, "label": "setosa"}
    assert type(body["prediction"]) is int


def test_single_row_with_probabilities(client: FlaskClient) -> None:
    """The probabilities flag adds one probability per class label, summing to 1."""
    body = client.post("/predict", json={"features": VIRGINICA, "probabilities": True}).get_json()
    assert body["prediction"] == 2
    assert body["label"] == "virginica"
    assert set(body["probabilities"]) == {"setosa", "versicolor", "virginica"}
    assert math.isclose(sum(body["probabilities"].values()), 1.0)
    assert max(body["probabilities"], key=body["probabilities"].get) == "virginica"


def test_batch_prediction(client: FlaskClient) -> None:
    """{"instances": rows} gives parallel predictions and labels."""
    body = client.post("/predict", json={"instances": [SETOSA, VIRGINICA]}).get_json()
    assert body == {"predictions": [0, 2], "labels": ["setosa", "virginica"]}


def test_batch_with_probabilities(client: FlaskClient) -> None:
    """Batch probabilities are one labelled mapping per row."""
    body = client.post(
        "/predict", json={"instances": [SETOSA, VIRGINICA], "probabilities": True}
    ).get_json()
    assert len(body["probabilities"]) == 2
    assert body["probabilities"][0]["setosa"] > 0.9
    assert body["probabilities"][1]["virginica"] > 0.9


def test_probabilities_false_omits_them(client: FlaskClient) -> None:
    """A false probabilities flag gives the default answer."""
    body = client.post("/predict", json={"features": SETOSA, "probabilities": False}).get_json()
    assert "probabilities" not in body


def test_integers_are_numbers(client: FlaskClient) -> None:
    """Integer features are valid numbers."""
    assert client.post("/predict", json={"features": [5, 3, 1, 0]}).status_code == 200


def test_values_beyond_what_the_scorer_takes_are_400(client: FlaskClient) -> None:
    """Any magnitude is a number; one that would overflow the scores is a 400 naming it."""
    response = client.post("/predict", json={"instances": [SETOSA, [1.0, 2.0, -2e305, 0.5]]})
    assert response.status_code == 400
    assert response.get_json()["error"].startswith("row 1, column 2: -2e+305 is too large")
    assert client.post("/predict", json={"features": [2e6, -1e9, 0, 0]}).status_code == 200
