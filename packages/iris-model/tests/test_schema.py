"""The schema: inferred from data, read strictly from a manifest, enforced on every input form."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd
import pytest

import iris_model
from iris_model import InvalidInputError, IrisModel
from iris_model.frames import to_columns
from iris_model.schema import Column, Schema, SchemaError

GOOD = {"columns": [{"name": "a", "type": "number", "nullable": False}]}


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ([], "one key"),
        ({"columns": {}}, "must be a list"),
        ({"columns": []}, "at least one column"),
        ({"columns": [{"name": "a"}]}, "expected name, type"),
        ({"columns": [{"name": "a", "type": "date"}]}, "one of"),
        ({"columns": [{"name": 1, "type": "number"}]}, "one of"),
        ({"columns": [{"name": "a", "type": "number", "nullable": "no"}]}, "true or false"),
        ({"columns": [{"name": "a", "type": "category"}]}, "only categories"),
        ({"columns": [{"name": "a", "type": "number", "categories": [1]}]}, "only categories"),
        ({"columns": [{"name": "a", "type": "category", "categories": [1, 1]}]}, "distinct"),
        ({"columns": [{"name": "a", "type": "category", "categories": [[1]]}]}, "distinct"),
        ({"columns": [{"name": "a", "type": "number"}] * 2}, "duplicate column 'a'"),
    ],
)
def test_a_manifest_schema_is_read_strictly(data: Any, fragment: str) -> None:
    """Anything but the form as_dict() writes is refused, saying what is wrong."""
    with pytest.raises(SchemaError, match=fragment):
        Schema.from_dict(data)


def test_a_schema_round_trips_through_its_dict() -> None:
    """as_dict() and from_dict() are inverses, categories and nullability included."""
    schema = Schema(
        (
            Column("n", "number", True),
            Column("k", "category", False, ("x", "y")),
            Column("s", "string", False, ("a",)),
        )
    )
    assert Schema.from_dict(schema.as_dict()) == schema
    assert Schema.from_dict(GOOD).names == ("a",)
    assert len(schema) == 3
    assert "k: category ['x', 'y']" in str(schema)


def test_object_columns_are_typed_by_their_values() -> None:
    """Object columns of one kind of value get that type; mixed ones are refused by name."""
    frame = pd.DataFrame(
        {
            "flags": pd.Series([True, None, False], dtype=object),
            "numbers": pd.Series([1, 2.5, None], dtype=object),
            "text": pd.Series(["a", None, "b"], dtype=object),
            "ints": pd.array([1, None, 3], dtype="Int64"),
        }
    )
    kinds = {c.name: (c.type, c.nullable) for c in Schema.infer(frame)}
    assert kinds == {
        "flags": ("boolean", True), "numbers": ("number", True), "text": ("string", True),
        "ints": ("integer", True),
    }  # fmt: skip
    with pytest.raises(SchemaError, match="column 'x' mixes value types"):
        Schema.infer(pd.DataFrame({"x": pd.Series(["a", 1], dtype=object)}))
    with pytest.raises(SchemaError, match="nullable names unknown column 'zz'"):
        Schema.infer(frame, nullable=["zz"])


@pytest.fixture(scope="module")
def typed() -> IrisModel:
    frame = pd.DataFrame(
        {
            "s": ["a", "b", "a", "b"] * 10,
            "n": np.linspace(0, 1, 40),
            "b": pd.Series([True, False, True, None] * 10, dtype=object),
        }
    )
    from sklearn.compose import ColumnTransformer  # noqa: PLC0415
    from sklearn.impute import SimpleImputer  # noqa: PLC0415
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415
    from sklearn.pipeline import make_pipeline  # noqa: PLC0415
    from sklearn.preprocessing import OneHotEncoder  # noqa: PLC0415

    columns = ColumnTransformer(
        [
            ("s", OneHotEncoder(), ["s"]),
            ("b", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder()), ["b"]),
            ("n", "passthrough", ["n"]),
        ]
    )
    pipeline = make_pipeline(columns, LogisticRegression())
    return IrisModel(pipeline).fit(frame, (np.arange(40) % 3 == 0).astype(int))


@pytest.mark.parametrize(
    ("rows", "fragment"),
    [
        ({"s": ["a"], "n": [0.5], "b": True}, "column 'b': expected a list of values"),
        ({"s": ["a", "b"], "n": [0.5], "b": [True]}, "columns differ in length"),
        ([{"s": "a", "n": 0.5}], "row 0: missing column 'b'"),
        ([["a", 0.5]], "row 0: expected 3 values"),
        ([["a", 0.5, True], 3], "row 1: expected a list of 3 values"),
        ("a,0.5,true", "expected rows"),
        ([], "empty input"),
        ({"s": [], "n": [], "b": []}, "empty input"),
        ({"s": "a", "n": 0.5, "b": "yes"}, "column 'b': expected true or false, got 'yes'"),
        ({"s": "c", "n": 0.5, "b": True}, "column 's': unknown value 'c'"),
        ({"s": ["a"], "n": 0.5, "b": True}, "expected a list of values"),
        ({"s": "a", "n": True, "b": True}, "column 'n': expected a finite number, got True"),
        ({"s": "a", "n": 1e39, "b": True}, "too large for this model's scorer"),
        ({"s": "a", "n": None, "b": True}, "column 'n': a missing value"),
        ({"s": ["a"], "n": np.zeros((1, 1)), "b": [True]}, "column 'n': expected one value per"),
        ({"s": ["a"], "n": [10**400], "b": [True]}, "column 'n': 1000000"),
    ],
)
def test_every_input_form_is_checked_by_name(typed: IrisModel, rows: Any, fragment: str) -> None:
    """Dicts of columns, row dicts and positional rows are all refused by column name."""
    with pytest.raises(InvalidInputError, match=fragment):
        typed.predict(rows)


def test_typed_input_forms_agree(typed: IrisModel) -> None:
    """Positional rows, numpy rows, a Series of columns and row dicts give the same answers."""
    rows = [["a", 0.25, True], ["b", 0.75, None]]
    expected = typed.predict_proba(rows)
    as_dicts = [dict(zip("snb", row, strict=True)) for row in rows]
    columns = {"s": pd.Series(["a", "b"]), "n": np.array([0.25, 0.75]), "b": [True, None]}
    np.testing.assert_array_equal(typed.predict_proba(as_dicts), expected)
    np.testing.assert_array_equal(typed.predict_proba(columns), expected)
    np.testing.assert_array_equal(typed.predict_proba(np.array(rows, dtype=object)), expected)
    assert typed.schema["s"].categories == ("a", "b")  # type: ignore[index]
    assert to_columns(rows, typed.schema, max_rows=5).n_rows == 2  # type: ignore[arg-type]
    with pytest.raises(iris_model.BatchTooLargeError):
        to_columns(rows * 3, typed.schema, max_rows=5)  # type: ignore[arg-type]


def test_a_model_whose_intercept_alone_overflows_keeps_the_per_call_guard(
    trained_model: IrisModel,
) -> None:
    """No bound on values helps when the intercept is huge: each call checks its scores."""
    estimator = copy.deepcopy(trained_model.estimator)
    estimator.intercept_ = estimator.intercept_ + np.array([1e308, -1e308, 0])
    model = IrisModel(estimator)
    assert model.max_abs_number == np.finfo(np.float64).max
    with pytest.raises(InvalidInputError, match="values too large to score"):
        model.predict_proba([[1e308, 1e308, 1e308, 1e308]])
    assert model.predict([[5.1, 3.5, 1.4, 0.2]]).tolist() == [0]
