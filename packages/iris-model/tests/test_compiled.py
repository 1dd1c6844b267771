"""The compiled scorer: the same answers as the pipeline it replaces, or the pipeline serves."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    MaxAbsScaler,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    RobustScaler,
    StandardScaler,
)

import iris_model
from iris_model import compiled
from iris_model.errors import InvalidInputError

NUMBERS = ["price", "area", "rooms"]
TEXT = ["region", "kind"]


def _frame(n: int = 120, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    price = rng.uniform(1e5, 4e6, n)
    price[::7] = np.nan
    frame = pd.DataFrame(
        {
            "region": rng.choice(["north", "south", "east"], n).astype(object),
            "kind": pd.Categorical(rng.choice(["flat", "house", "villa"], n)),
            "price": price,
            "area": rng.uniform(20, 400, n),
            "rooms": rng.integers(1, 9, n),
            "garden": rng.integers(0, 2, n).astype(bool),
        }
    )
    big = np.where(frame["area"] > 200, "maybe", "no")
    labels = np.where(np.nan_to_num(price) > 2e6, "yes", big)
    return frame, pd.Series(labels, name="sale")


def _houses(**encoder: Any) -> Pipeline:
    return make_pipeline(
        ColumnTransformer(
            [
                ("numbers", make_pipeline(SimpleImputer(), StandardScaler()), NUMBERS),
                ("text", OneHotEncoder(handle_unknown="ignore", **encoder), TEXT),
                ("flags", "passthrough", ["garden"]),
            ]
        ),
        LogisticRegression(max_iter=1000),
    )


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
        for row in frame.astype(object).to_dict("records")
    ]


def _assert_same(model: iris_model.IrisModel, frame: pd.DataFrame) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the pipeline's "unknown categories" warning
        expected = model.estimator.predict_proba(frame)
        labels = model.estimator.predict(frame)
    for rows in (frame, _rows(frame), frame.iloc[[0]], _rows(frame)[0]):
        got = model.predict_proba(rows)
        np.testing.assert_allclose(got, expected[: len(got)], rtol=1e-9, atol=1e-9)
    assert model.predict(frame).tolist() == labels.tolist()


def test_a_typical_pipeline_is_compiled_and_answers_as_the_pipeline() -> None:
    """A ColumnTransformer of imputer, scaler, one-hot and passthrough, then a logistic."""
    x, y = _frame()
    model, _ = iris_model.train(x, y, estimator=_houses())
    assert model.scorer_kind == "compiled"
    assert model.compiled_reason == "compiled"
    assert not model.uses_fast_path  # the server's numeric hot path is unchanged
    _assert_same(model, _frame(40, seed=1)[0])


def test_an_unknown_string_is_ignored_as_the_encoder_ignores_it() -> None:
    """handle_unknown="ignore": an unseen region scores as the pipeline scores it."""
    x, y = _frame()
    model, _ = iris_model.train(x, y, estimator=_houses(drop="first"))
    assert model.scorer_kind == "compiled"
    rows = x.iloc[:3].copy()
    rows["region"] = ["west", "north", "mars"]
    _assert_same(model, rows)


def test_a_refused_unknown_value_is_named() -> None:
    """handle_unknown="error": the schema (or the compiled encoder) names the value."""
    x, y = _frame()
    pipeline = _houses()
    pipeline.steps[0][1].transformers[1] = ("text", OneHotEncoder(), TEXT)
    model, _ = iris_model.train(x, y, estimator=pipeline)
    assert model.scorer_kind == "compiled"
    row = _rows(x)[0] | {"region": "mars"}
    with pytest.raises(InvalidInputError, match="mars"):
        model.predict(row)


class _Doubler(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """A custom transformer the compiler cannot know."""

    def fit(self, X: Any, y: Any = None) -> _Doubler:  # noqa: N803 - sklearn's name
        self.n_features_in_ = np.shape(X)[1]
        return self

    def transform(self, X: Any) -> Any:  # noqa: N803 - sklearn's name
        return np.asarray(X, dtype=np.float64) * 2


@pytest.mark.parametrize(
    ("step", "name"), [(PolynomialFeatures(), "PolynomialFeatures"), (_Doubler(), "_Doubler")]
)
def test_an_unsupported_step_falls_back_to_the_pipeline(step: Any, name: str) -> None:
    """The pipeline serves, and the model, the manifest and the CLI say why."""
    x, y = _frame()
    pipeline = make_pipeline(
        ColumnTransformer(
            [
                ("numbers", make_pipeline(SimpleImputer(), step), NUMBERS),
                ("text", OneHotEncoder(handle_unknown="ignore"), TEXT),
            ]
        ),
        LogisticRegression(max_iter=1000),
    )
    model, _ = iris_model.train(x, y, estimator=pipeline)
    assert model.scorer_kind == "estimator"
    assert model.compiled_reason is not None
    assert name in model.compiled_reason
    _assert_same(model, x.iloc[:5])


def test_a_non_linear_classifier_is_not_compiled() -> None:
    """Only the linear models the numeric scorer reproduces are compiled."""
    from sklearn.ensemble import RandomForestClassifier  # noqa: PLC0415

    x, y = _frame()
    pipeline = _houses()
    pipeline.steps[-1] = ("forest", RandomForestClassifier(n_estimators=5, random_state=0))
    model, _ = iris_model.train(x, y, estimator=pipeline)
    assert model.scorer_kind == "estimator"
    assert "RandomForestClassifier" in (model.compiled_reason or "")


def test_a_scorer_that_disagrees_with_the_pipeline_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Trust by proof: probabilities off by more than the tolerance and the pipeline serves."""
    x, y = _frame()
    fitted = iris_model.train(x, y, estimator=_houses())[0].estimator
    real = compiled.CompiledScorer.predict_proba
    monkeypatch.setattr(
        compiled.CompiledScorer,
        "predict_proba",
        lambda self, matrix: real(self, matrix) + 1e-7,
    )
    model = iris_model.IrisModel(fitted, schema=iris_model.Schema.infer(x))
    assert model.scorer_kind == "estimator"
    assert "proof row" in (model.compiled_reason or "")


def test_missing_values_without_an_imputer_are_not_compiled() -> None:
    """A nullable column reaching the classifier unfilled: the pipeline's own error stays."""
    x, y = _frame()
    pipeline = make_pipeline(
        ColumnTransformer([("numbers", StandardScaler(), NUMBERS)]),
        LogisticRegression(max_iter=1000),
    )
    model = iris_model.IrisModel(pipeline.fit(x.fillna(0), y), schema=iris_model.Schema.infer(x))
    assert model.scorer_kind == "estimator"
    assert "price" in (model.compiled_reason or "")


def test_save_and_load_record_and_prove_the_compiled_scorer(tmp_path: Path) -> None:
    """The manifest and ``iris-model info`` name the scorer; load() compiles and proves again."""
    x, y = _frame()
    model, _ = iris_model.train(x, y, estimator=_houses())
    iris_model.save(model, tmp_path / "m")
    manifest = iris_model.read_manifest(tmp_path / "m")
    assert manifest["scorer"] == {"kind": "compiled", "reason": "compiled"}
    loaded = iris_model.load(tmp_path / "m")
    assert loaded.scorer_kind == "compiled"
    _assert_same(loaded, x.iloc[:10])


_SCALERS = [None, StandardScaler, MinMaxScaler, RobustScaler, MaxAbsScaler]


@st.composite
def _pipelines(draw: st.DrawFn) -> Pipeline:
    strategy = draw(st.sampled_from(["mean", "median", "most_frequent", "constant"]))
    scaler = draw(st.sampled_from(_SCALERS))
    numbers: list[Any] = [SimpleImputer(strategy=strategy, add_indicator=draw(st.booleans()))]
    if scaler is not None:
        numbers.append(scaler())
    if draw(st.booleans()):
        text: Any = OneHotEncoder(
            handle_unknown="ignore", drop=draw(st.sampled_from([None, "first", "if_binary"]))
        )
    else:
        text = make_pipeline(
            OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
            draw(st.sampled_from([StandardScaler, MinMaxScaler]))(),
        )
    by_position = draw(st.booleans())
    number_columns: list[Any] = [2, 3, 4] if by_position else NUMBERS
    remainder = draw(st.sampled_from(["drop", "passthrough"]))
    transformers = [
        ("numbers", make_pipeline(*numbers), number_columns),
        ("text", text, [0, 1] if by_position else TEXT),
    ]
    steps: list[Any] = [ColumnTransformer(transformers, remainder=remainder)]
    if draw(st.booleans()):
        steps.append(draw(st.sampled_from([StandardScaler, MaxAbsScaler]))())
    c = draw(st.sampled_from([0.1, 10.0]))
    return make_pipeline(*steps, LogisticRegression(max_iter=500, C=c))


# Unscaled prices may stop lbfgs short of convergence: the equivalence holds all the same.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pipeline=_pipelines(), seed=st.integers(0, 2**16), binary=st.booleans())
def test_random_pipelines_of_supported_steps_answer_as_the_pipeline(
    pipeline: Pipeline, seed: int, binary: bool
) -> None:
    """Any pipeline of the supported steps compiles and agrees on random rows."""
    x, y = _frame(80, seed=seed % 7)
    if binary:
        y = y.where(y == "yes", "no")
    if y.nunique() < 2:
        return
    x = x[["region", "kind", "price", "area", "rooms", "garden"]]
    model, _ = iris_model.train(x, y, estimator=pipeline)
    assert model.scorer_kind == "compiled", model.compiled_reason
    rows, _ = _frame(30, seed=seed)
    rows.loc[rows.index[::5], "region"] = "unseen"
    _assert_same(model, rows)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # unscaled prices
def test_rows_both_refuse_do_not_stop_the_proof() -> None:
    """An encoder refusing unknowns, with no known values in the schema: both refuse them.

    The proof goes row by row then, and the compiled encoder names the value itself.
    """
    x, y = _frame()
    pipeline = make_pipeline(
        ColumnTransformer(
            [
                ("numbers", SimpleImputer(strategy="constant", fill_value=0.0), NUMBERS),
                ("text", OrdinalEncoder(), TEXT),
                ("flags", MinMaxScaler(clip=True), ["garden"]),
            ]
        ),
        LogisticRegression(max_iter=1000),
    )
    model = iris_model.IrisModel(pipeline.fit(x, y), schema=iris_model.Schema.infer(x))
    assert model.scorer_kind == "compiled", model.compiled_reason
    _assert_same(model, x.iloc[:10])
    with pytest.raises(InvalidInputError, match="row 0, column 'region': unknown value 'mars'"):
        model.predict(_rows(x)[0] | {"region": "mars"})
