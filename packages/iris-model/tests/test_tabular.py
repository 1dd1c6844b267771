"""Mixed-type tables: strings, categories, integers, booleans, millions and missing values."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, PowerTransformer, StandardScaler

import iris_model
from iris_model import InvalidInputError, IrisModel, ModelLoadError
from iris_model.persistence import MANIFEST_FILE

HOUSES = Path(__file__).parents[1] / "examples" / "houses.csv"
NUMBERS = ["price", "area", "rooms"]


def _houses() -> tuple[pd.DataFrame, pd.Series]:
    frame = pd.read_csv(HOUSES)
    frame["kind"] = frame["kind"].astype("category")
    return frame.drop(columns="sale"), frame["sale"]


def _pipeline(**encoder: Any) -> Any:
    numbers = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    columns = ColumnTransformer(
        [
            ("numbers", numbers, NUMBERS),
            ("text", OneHotEncoder(**{"handle_unknown": "ignore", **encoder}), ["region", "kind"]),
            ("flags", "passthrough", ["garden"]),
        ]
    )
    return make_pipeline(columns, LogisticRegression(max_iter=1000))


@pytest.fixture(scope="module")
def houses() -> tuple[pd.DataFrame, pd.Series]:
    return _houses()


@pytest.fixture(scope="module")
def trained(houses: tuple[pd.DataFrame, pd.Series]) -> iris_model.TrainingResult:
    x, y = houses
    return iris_model.train(x, y, estimator=_pipeline(), cv_folds=0)


def test_the_schema_is_inferred_from_the_frame(trained: iris_model.TrainingResult) -> None:
    """Each column gets its type, missing values where the data has them, a category's values."""
    schema = trained.model.schema
    assert schema is not None
    as_text = {column.name: str(column) for column in schema}
    assert as_text == {
        "region": "region: string",
        "kind": "kind: category ['flat', 'house', 'villa']",
        "price": "price: number (nullable)",
        "area": "area: number (nullable)",
        "rooms": "rooms: integer",
        "garden": "garden: boolean",
    }


def test_a_mixed_pipeline_predicts_like_scikit_learn(
    trained: iris_model.TrainingResult, houses: tuple[pd.DataFrame, pd.Series]
) -> None:
    """ColumnTransformer by name, one-hot and imputation: the model answers as the pipeline."""
    model, x_test = trained.model, trained.X_test
    expected = model.estimator.predict_proba(x_test)
    np.testing.assert_array_equal(model.predict_proba(x_test), expected)
    assert not model.uses_fast_path
    assert trained.evaluation.accuracy > 0.7  # the labels follow the columns
    shuffled = x_test[list(reversed(x_test.columns))]
    np.testing.assert_array_equal(model.predict_proba(shuffled), expected)


def test_dicts_of_columns_and_row_dicts_are_rows(trained: iris_model.TrainingResult) -> None:
    """The server's forms: a dict of columns, a list of row dicts, one row dict."""
    model, x_test = trained.model, trained.X_test.iloc[:5]
    expected = model.predict(x_test).tolist()
    columns = {name: x_test[name].astype(object).tolist() for name in x_test.columns}
    columns["price"] = [None if pd.isna(v) else v for v in columns["price"]]
    columns["area"] = [None if pd.isna(v) else v for v in columns["area"]]
    rows = [
        dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)
    ]
    assert model.predict(columns).tolist() == expected
    assert model.predict(rows).tolist() == expected
    assert model.predict(rows[0]).tolist() == expected[:1]


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("region", 3, "row 7, column 'region': expected a string, got 3 (int)"),
        ("price", "west", "row 7, column 'price': expected a finite number, got 'west'"),
        ("price", float("inf"), "row 7, column 'price': expected a finite number, got inf"),
        ("rooms", 2.5, "row 7, column 'rooms': expected a whole number, got 2.5"),
        ("rooms", None, "row 7, column 'rooms': a missing value, and the column allows none"),
        ("garden", "yes", "row 7, column 'garden': expected true or false, got 'yes'"),
        ("kind", "castle", "row 7, column 'kind': unknown value 'castle' (the model knows"),
    ],
)
def test_a_wrong_value_names_the_row_label_and_column(
    trained: iris_model.TrainingResult, column: str, value: Any, message: str
) -> None:
    """Errors name the frame's index label and the column, for every type."""
    rows = trained.X_test.iloc[:3].astype(object).set_axis([5, 6, 7])
    rows.loc[7, column] = value
    with pytest.raises(InvalidInputError) as info:
        trained.model.predict(rows)
    assert str(info.value).startswith(message)


def test_missing_values_pass_where_the_schema_allows(trained: iris_model.TrainingResult) -> None:
    """A missing price is imputed (learned nullable); millions are ordinary numbers."""
    row = {"region": "north", "kind": "villa", "price": None, "area": 180.0, "rooms": 6,
           "garden": True}  # fmt: skip
    assert trained.model.predict_labels(row)[0] in trained.model.classes
    row["price"] = 12_768_351.0
    assert trained.model.predict_labels(row)[0] in trained.model.classes


def test_unknown_strings_follow_the_estimator(houses: tuple[pd.DataFrame, pd.Series]) -> None:
    """An encoder that ignores unknown values gets them; one that refuses them: refused by name."""
    x, y = houses
    row = x.iloc[:1].assign(region="atlantis")
    ignoring = iris_model.train(x, y, estimator=_pipeline(), cv_folds=0).model
    assert ignoring.schema["region"].categories is None  # type: ignore[index]
    assert len(ignoring.predict(row)) == 1
    refusing = iris_model.train(x, y, estimator=_pipeline(handle_unknown="error"), cv_folds=0)
    known = refusing.model.schema["region"].categories  # type: ignore[index]
    assert known == ("east", "north", "south", "west")
    with pytest.raises(InvalidInputError, match="column 'region': unknown value 'atlantis'"):
        refusing.model.predict(row)


def test_native_missing_values_and_categories(houses: tuple[pd.DataFrame, pd.Series]) -> None:
    """HistGradientBoosting takes NaN and categories itself: the estimator gets the dtypes."""
    x, y = houses
    estimator = HistGradientBoostingClassifier(categorical_features="from_dtype", max_iter=20)
    model, _ = iris_model.train(x.drop(columns=["region"]), y, estimator=estimator, cv_folds=0)
    row = x.drop(columns=["region"]).iloc[:2]
    np.testing.assert_array_equal(model.predict_proba(row), model.estimator.predict_proba(row))


def test_save_load_keeps_the_schema(trained: iris_model.TrainingResult, tmp_path: Path) -> None:
    """The manifest stores the schema; the loaded model answers alike and checks it."""
    iris_model.save(trained.model, tmp_path)
    manifest = json.loads((tmp_path / MANIFEST_FILE).read_text())
    assert manifest["schema"] == trained.model.schema.as_dict()  # type: ignore[union-attr]
    assert isinstance(manifest["golden"][0]["input"], dict)
    loaded = iris_model.load(tmp_path)
    np.testing.assert_array_equal(
        loaded.predict_proba(trained.X_test), trained.model.predict_proba(trained.X_test)
    )


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: m["schema"]["columns"][2].update(type="string"),
        lambda m: m["schema"]["columns"][5].update(type="number"),
        lambda m: m["schema"]["columns"].reverse(),
        lambda m: m["feature_names"].reverse(),
        lambda m: m["schema"]["columns"][0].update(extra=1),
    ],
    ids=["retyped", "bool-as-number", "schema-reversed", "names-reversed", "unknown-key"],
)
def test_schema_edits_are_refused_at_load(
    trained: iris_model.TrainingResult, tmp_path: Path, edit: Any
) -> None:
    """Editing the schema or the feature names in model.json is refused."""
    iris_model.save(trained.model, tmp_path)
    path = tmp_path / MANIFEST_FILE
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))
    sha = iris_model.persistence.file_sha256(tmp_path / iris_model.persistence.MODEL_FILE)
    assert manifest["artifact"]["sha256"] == sha  # only the manifest changed
    with pytest.raises(ModelLoadError):
        iris_model.load(tmp_path)


def test_integer_column_labels_train_and_predict() -> None:
    """pd.DataFrame(array) has integer labels: they are the names "0", "1", ..."""
    features, target = iris_model.dataset.load_dataset()
    frame = pd.DataFrame(features)
    model, _ = iris_model.train(frame, target)
    assert model.feature_names == ("0", "1", "2", "3")
    assert model.predict(frame.iloc[:5]).tolist() == model.predict(features[:5]).tolist()


@pytest.mark.parametrize(
    "make_labels",
    [
        lambda y: pd.Series(y).map(dict(enumerate(np.array(["a", "b", "c"])))),
        lambda y: pd.Series(pd.Categorical.from_codes(y, ["a", "b", "c"])),
        lambda y: np.array(["a", "b", "c"])[y].astype(object),
        lambda y: y == 0,
        lambda y: pd.Series(y).astype("int32"),
    ],
    ids=["numpy-str", "categorical", "object-str", "bool", "int32"],
)
def test_labels_of_every_kind_scikit_learn_takes(make_labels: Any) -> None:
    """numpy.str_ (pandas 3 map), categoricals, booleans and integers are labels."""
    features, target = iris_model.dataset.load_dataset()
    labels = make_labels(target)
    model, evaluation = iris_model.train(features, labels, cv_folds=0)
    assert evaluation.accuracy > 0.9
    assert set(model.classes) <= {"a", "b", "c", "True", "False", "0", "1", "2"}


def test_mixed_labels_are_refused() -> None:
    """Labels of two types cannot make classes."""
    features, _ = iris_model.dataset.load_dataset()
    labels = np.array(["a", 1] * 75, dtype=object)
    with pytest.raises(iris_model.TrainingError, match="mixes label types"):
        iris_model.train(features, labels)


def test_columns_of_unusable_types_are_refused() -> None:
    """A datetime column must become numbers first; the error says so."""
    frame = pd.DataFrame({"when": pd.date_range("2026-01-01", periods=20), "x": range(20)})
    with pytest.raises(iris_model.TrainingError, match="column 'when' has dtype datetime64"):
        iris_model.train(frame, np.arange(20) % 2)


def test_declared_nullable_columns_take_missing_values() -> None:
    """nullable= lets a column be missing at prediction though the training data is complete."""
    features, target = iris_model.dataset.load_dataset()
    frame = pd.DataFrame(features, columns=list("abcd"))
    estimator = make_pipeline(SimpleImputer(), LogisticRegression(max_iter=1000))
    model, _ = iris_model.train(frame, target, estimator=estimator, nullable=["d"])
    assert model.predict({"a": 5.1, "b": 3.5, "c": 1.4, "d": None}).tolist() == [0]
    with pytest.raises(InvalidInputError, match="column 'a': a missing value"):
        model.predict({"a": None, "b": 3.5, "c": 1.4, "d": 0.2})


def test_save_of_a_hand_wrapped_pipeline_reports_probe_failures(tmp_path: Path) -> None:
    """A pipeline that cannot take made-up rows is a ModelSaveError; fit() records real ones."""
    features, target = iris_model.dataset.load_dataset()

    def box_cox() -> Any:  # takes strictly positive numbers only; probes go below zero
        return make_pipeline(PowerTransformer(method="box-cox"), LogisticRegression(max_iter=1000))

    with pytest.raises(iris_model.ModelSaveError, match="probe rows drawn from its schema"):
        iris_model.save(IrisModel(box_cox().fit(features, target)), tmp_path / "a")
    model = IrisModel(box_cox()).fit(features, target)
    assert iris_model.load(iris_model.save(model, tmp_path / "b")).classes == model.classes


def test_a_hand_wrapped_pipeline_takes_a_schema_and_saves_with_schema_probes(
    houses: tuple[pd.DataFrame, pd.Series], tmp_path: Path
) -> None:
    """IrisModel(fitted, schema=Schema.infer(X)): typed rows, and save() probes by type."""
    x, y = houses
    model = IrisModel(_pipeline().fit(x, y), schema=iris_model.Schema.infer(x))
    assert model.predict(x.iloc[:4]).tolist() == model.estimator.predict(x.iloc[:4]).tolist()
    iris_model.save(model, tmp_path)
    golden = json.loads((tmp_path / MANIFEST_FILE).read_text())["golden"]
    assert {row["input"]["kind"] for row in golden} <= {"flat", "house", "villa"}
    assert {type(row["input"]["garden"]) for row in golden} == {bool}
    assert iris_model.load(tmp_path).schema == model.schema
