"""A mixed-type model served by name: rows as column objects on ``/predict`` and KServe V1."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from flask.testing import FlaskClient
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import iris_model
from inference_server import create_app

from .conftest import SETOSA


def _houses() -> tuple[pd.DataFrame, pd.Series]:
    """A string, a category, two numbers in the millions (one with missing values)."""
    rng = np.random.default_rng(7)
    n = 120
    region = rng.choice(["north", "south", "east", "west"], n)
    rooms = rng.integers(1, 7, n)
    price = rng.uniform(1e5, 3e6, n).round(2)
    price[::10] = np.nan
    frame = pd.DataFrame(
        {
            "region": region,
            "kind": pd.Categorical(rng.choice(["flat", "house"], n)),
            "price": price,
            "rooms": rooms,
        }
    )
    sale = np.where((rooms > 3) | (region == "south"), "fast", "slow")
    return frame, pd.Series(sale, name="sale")


@pytest.fixture(scope="module")
def houses() -> tuple[pd.DataFrame, iris_model.IrisModel]:
    frame, sale = _houses()
    numbers = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    columns = ColumnTransformer(
        [
            ("numbers", numbers, ["price", "rooms"]),
            ("text", OneHotEncoder(handle_unknown="ignore"), ["region", "kind"]),
        ]
    )
    estimator = make_pipeline(columns, LogisticRegression(max_iter=1000))
    model, _ = iris_model.train(frame, sale, estimator=estimator, cv_folds=0)
    return frame, model


def _records(frame: pd.DataFrame) -> list[dict[str, object]]:
    """The frame's rows as JSON objects (NaN as null, as a client sends a missing value)."""
    rows: list[dict[str, object]] = frame.astype(object).to_dict("records")
    return [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
        for r in rows
    ]


@pytest.fixture(scope="module")
def typed_client(make_app_module, houses):  # type: ignore[no-untyped-def]
    return make_app_module(houses[1]).test_client()


@pytest.fixture(scope="module")
def make_app_module():  # type: ignore[no-untyped-def]
    def factory(model: iris_model.IrisModel) -> object:
        app = create_app({"LOG_REQUESTS": False}, model=model)
        app.testing = True
        return app

    return factory


def _expected(houses: tuple[pd.DataFrame, iris_model.IrisModel]) -> list[int]:
    frame, model = houses
    labels = list(model.estimator.classes_)
    return [labels.index(label) for label in model.estimator.predict(frame)]


def test_seed_features_object_answers_as_the_pipeline(typed_client, houses) -> None:  # type: ignore[no-untyped-def]
    """One row by column name (columns in any order, a null where allowed) on ``/predict``."""
    expected = _expected(houses)
    for i, row in enumerate(_records(houses[0])[:12]):
        reordered = dict(reversed(list(row.items())))
        response = typed_client.post("/predict", json={"features": reordered})
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["prediction"] == expected[i]


def test_seed_and_v1_instances_as_objects(typed_client, houses) -> None:  # type: ignore[no-untyped-def]
    """A batch of row objects: the same predictions as the pipeline on the same rows.

    40 rows: the hardening bounds (``MAX_OBJECTS``, ``MAX_KEYS``) cap a body's objects.
    """
    expected = _expected(houses)[:40]
    rows = _records(houses[0])[:40]
    seed = typed_client.post("/predict", json={"instances": rows})
    assert seed.status_code == 200, seed.get_json()
    assert seed.get_json()["predictions"] == expected
    v1 = typed_client.post("/v1/models/iris:predict", json={"instances": rows})
    assert v1.status_code == 200, v1.get_json()
    assert v1.get_json()["predictions"] == expected


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"price": "west"}, "'price'"),
        ({"colour": "red"}, "'colour'"),
        ({"rooms": None, "drop": "region"}, "'region'"),
    ],
)
def test_errors_name_the_column(typed_client, houses, change, named) -> None:  # type: ignore[no-untyped-def]
    """A wrong type, an unknown column or a missing one: 400 naming the column."""
    row = dict(_records(houses[0])[1])
    change = dict(change)
    row.pop(change.pop("drop", ""), None)
    row.update(change)
    for body in ({"features": row}, {"instances": [row]}):
        response = typed_client.post("/predict", json=body)
        assert response.status_code == 400
        assert named in response.get_json()["error"]


def test_iris_takes_features_by_name(client: FlaskClient, app) -> None:  # type: ignore[no-untyped-def]
    """The Iris model answers a row object as it answers the same list."""
    names = list(iris_model.train(cv_folds=0)[0].feature_names)
    by_list = client.post("/predict", json={"features": SETOSA}).get_json()
    by_name = client.post("/predict", json={"features": dict(zip(names, SETOSA, strict=True))})
    assert by_name.status_code == 200, by_name.get_json()
    assert by_name.get_json() == by_list
