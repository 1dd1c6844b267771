"""The protocol modules on their own: body bytes in, calls out; predictions in, bytes out."""

from __future__ import annotations

import functools
import json
import sys
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st

import iris_model
from inference_server.http.errors import ApiError
from inference_server.http.pipeline import EnvironHeaders
from inference_server.http.strictjson import InvalidJSONError
from inference_server.protocols import (
    KServeV1Protocol,
    OpenInferenceProtocol,
    Prediction,
    SeedProtocol,
    kserve_v1,
)
from inference_server.protocols.batches import plain_batch

NO_HEADERS = EnvironHeaders({})
CLASSES = ("a", "b", "c")

values = st.floats(-1e6, 1e6, allow_nan=False) | st.integers(-(10**6), 10**6)


def rows_of(width: int) -> st.SearchStrategy[list[list[Any]]]:
    """Batches of 1-20 rows of ``width`` numbers."""
    return st.lists(st.lists(values, min_size=width, max_size=width), min_size=1, max_size=20)


def encode(document: Any) -> bytes:
    return json.dumps(document).encode()


def prediction(indices: list[int], proba: list[list[float]] | None = None) -> Prediction:
    return Prediction(
        np.array(indices, dtype=np.int64), None if proba is None else np.array(proba), CLASSES
    )


@seed(20261201)
@settings(max_examples=100, deadline=None)
@given(rows=rows_of(4), want_proba=st.booleans())
def test_seed_instances_round_trip(rows: list[list[Any]], want_proba: bool) -> None:
    """Any batch comes out as the same rows; the flag as sent."""
    call = SeedProtocol().parse(
        encode({"instances": rows, "probabilities": want_proba}), NO_HEADERS
    )
    assert call.rows == rows
    assert call.probabilities is want_proba
    assert call.context is False


@seed(20261201)
@settings(max_examples=100, deadline=None)
@given(width=st.integers(1, 30), data=st.data())
def test_v2_flat_and_nested_give_the_same_rows(width: int, data: st.DataObject) -> None:
    """Row-major flat data and one list per row parse to the same rows, for any width."""
    rows = data.draw(rows_of(width))
    protocol = OpenInferenceProtocol("m", width)
    shape = [len(rows), width]
    flat = [value for row in rows for value in row]
    for payload in (flat, rows):
        body = {"inputs": [{"name": "x", "shape": shape, "datatype": "FP64", "data": payload}]}
        call = protocol.parse(encode(body), NO_HEADERS)
        # A matrix when the body holds only numbers (it does here), else the lists as sent.
        assert (
            np.asarray(call.rows, dtype=np.float64).tolist()
            == np.asarray(rows, dtype=np.float64).tolist()
        )
        assert not call.probabilities


@seed(20261201)
@settings(max_examples=50, deadline=None)
@given(n_rows=st.integers(1, 10), width=st.integers(1, 8), data=st.data())
def test_v2_refuses_data_that_disagrees_with_shape(
    n_rows: int, width: int, data: st.DataObject
) -> None:
    """A flat data length other than n * width is a 400 that names both."""
    length = data.draw(st.integers(1, 90).filter(lambda k: k != n_rows * width))
    body = {
        "inputs": [
            {"name": "x", "shape": [n_rows, width], "datatype": "FP32", "data": [1.0] * length}
        ]
    }
    with pytest.raises(ApiError) as error:
        OpenInferenceProtocol("m", width).parse(encode(body), NO_HEADERS)
    assert error.value.status == 400
    assert f"has {length} values" in error.value.message


def test_seed_single_row_renders_prediction_and_label() -> None:
    """One ``features`` row: a class index, its label, labelled probabilities."""
    protocol = SeedProtocol()
    call = protocol.parse(b'{"features": [1, 2, 3, 4], "probabilities": true}', NO_HEADERS)
    assert call.rows == [[1, 2, 3, 4]]
    answer = protocol.render(call, prediction([2], [[0.1, 0.2, 0.7]]))
    assert answer.status == 200
    assert ("Content-Type", "application/json") in answer.headers
    assert json.loads(answer.body) == {
        "prediction": 2,
        "label": "c",
        "probabilities": {"a": 0.1, "b": 0.2, "c": 0.7},
    }


def test_seed_batch_renders_lists() -> None:
    """A batch: parallel predictions and labels."""
    protocol = SeedProtocol()
    call = protocol.parse(b'{"instances": [[1], [2]]}', NO_HEADERS)
    answer = protocol.render(call, prediction([1, 0]))
    assert json.loads(answer.body) == {"predictions": [1, 0], "labels": ["b", "a"]}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"features": [1], "x": 1}', "unknown field(s): 'x'"),
        (b"{}", "send exactly one of 'features'"),
        (b'{"features": [1], "instances": [[1]]}', "send exactly one of 'features'"),
        (
            b'{"features": 1}',
            "'features' must be an array of values or an object of columns, got number",
        ),
        (b'{"instances": [1]}', "'instances' must be an array of rows"),
        (b'{"features": [1], "probabilities": 1}', "'probabilities' must be true or false"),
        (b"[]", "request body must be a JSON object, got array"),
    ],
)
def test_seed_rule_violations(body: bytes, message: str) -> None:
    """Each rule of the seed protocol is a 400 that says which."""
    with pytest.raises(ApiError) as error:
        SeedProtocol().parse(body, NO_HEADERS)
    assert error.value.status == 400
    assert message in error.value.message


def test_parse_is_strict_json() -> None:
    """Duplicate keys and NaN never reach a protocol's rules."""
    for protocol in (SeedProtocol(), KServeV1Protocol(), OpenInferenceProtocol("m", 4)):
        with pytest.raises(InvalidJSONError):
            protocol.parse(b'{"instances": [[NaN]]}', NO_HEADERS)
        with pytest.raises(InvalidJSONError):
            protocol.parse(b'{"instances": 1, "instances": 2}', NO_HEADERS)


def test_kserve_v1() -> None:
    """``instances`` only; class indices back; the route carries the model name."""
    assert kserve_v1.predict_route("wine") == "/v1/models/wine:predict"
    protocol = KServeV1Protocol()
    call = protocol.parse(b'{"instances": [[1, 2]]}', NO_HEADERS)
    assert call.rows == [[1, 2]]
    assert json.loads(protocol.render(call, prediction([2])).body) == {"predictions": [2]}
    with pytest.raises(ApiError, match="unknown field"):
        protocol.parse(b'{"instances": [[1]], "probabilities": true}', NO_HEADERS)


def test_v2_outputs_in_the_order_asked_with_id() -> None:
    """Requested outputs come back in order; probabilities flattened row-major; id echoed."""
    protocol = OpenInferenceProtocol("m", 2)
    body = {
        "id": "7",
        "inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]}],
        "outputs": [{"name": "predict_proba"}, {"name": "predict"}],
    }
    call = protocol.parse(encode(body), NO_HEADERS)
    assert call.probabilities
    answer = json.loads(
        protocol.render(call, prediction([0, 2], [[0.5, 0.5, 0.0], [0.0, 0.1, 0.9]])).body
    )
    assert answer == {
        "model_name": "m",
        "id": "7",
        "outputs": [
            {
                "name": "predict_proba",
                "datatype": "FP32",  # the input's
                "shape": [2, 3],
                "data": [0.5, 0.5, 0.0, 0.0, 0.1, 0.9],
            },
            {"name": "predict", "datatype": "INT64", "shape": [2], "data": [0, 2]},
        ],
    }


def test_v2_binary_data_on_an_input_is_refused_clearly() -> None:
    """Inputs mark binary data with binary_data_size; binary_data=true on one is a 400."""
    body = {
        "inputs": [
            {
                "name": "x",
                "shape": [1, 1],
                "datatype": "FP32",
                "data": [1],
                "parameters": {"binary_data": True},
            }
        ]
    }
    with pytest.raises(ApiError, match=r"binary inputs are marked by parameters\.binary_data_size"):
        OpenInferenceProtocol("m", 1).parse(encode(body), NO_HEADERS)


def test_environ_headers() -> None:
    """Headers are read from the environ by their HTTP names, case-insensitively."""
    headers = EnvironHeaders(
        {"CONTENT_TYPE": "application/json", "HTTP_INFERENCE_HEADER_CONTENT_LENGTH": "12"}
    )
    assert headers.get("Content-Type") == "application/json"
    assert headers.get("inference-header-content-length") == "12"
    assert headers.get("Authorization") is None


# Values a client may send inside rows, valid or not: the matrix path must not change any
# answer or any error message of the library's own check of a list of rows.
_any_value = st.one_of(
    values,
    st.sampled_from(
        [True, False, None, "1", "", 1e300, -1e7, 10**400, 1.5e-320, -0.0, [], [1.0], {}, {"a": 1}]
    ),
)


@functools.cache
def _iris() -> iris_model.IrisModel:
    return iris_model.train(seed=42).model


def _outcome(model: Any, rows: Any) -> tuple[str, Any]:
    try:
        indices, proba = model.classify(rows, probabilities=True)
    except ValueError as error:  # InvalidInputError, BatchTooLargeError
        return type(error).__name__, str(error)
    return "ok", (indices.tolist(), proba.tolist())


@seed(20261201)
@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(
        st.one_of(
            st.lists(values, min_size=4, max_size=4),
            st.lists(_any_value, min_size=3, max_size=5),
            _any_value,
        ),
        min_size=0,
        max_size=6,
    ),
    extra=st.sampled_from([{}, {"probabilities": True}, {"probabilities": False}]),
)
def test_number_rows_keep_the_librarys_answers(rows: list[Any], extra: dict[str, Any]) -> None:
    """A seed or V1 batch parsed to a matrix classifies (or fails) exactly like its lists."""
    body = json.dumps({"instances": rows, **extra}).encode()
    protocol = SeedProtocol()
    protocol.n_features = 4
    try:
        call = protocol.parse(body, NO_HEADERS)
    except ApiError:
        return  # refused before the rows (e.g. 'instances' that is not an array of rows)
    model = _iris()
    assert _outcome(model, call.rows) == _outcome(model, json.loads(body)["instances"])


# Text fragments that put plain batches next to near-misses: nested and ragged rows, other
# value types, duplicate or escaped keys, a byte-order mark, odd whitespace and numbers.
_number_text = st.sampled_from(
    ["5.1", "-0", "-0.0", "3", "1e3", "2E-3", "1e400", "1000000", "1000001", "-1e6",
     "18446744073709551616", "9007199254740993", "0.1e-320", "true", "null", '"1"', "[]",
     "[1]", "{}"]
)  # fmt: skip


_plain_number = st.sampled_from(
    ["5.1", "-0", "-0.0", "3", "1e3", "2E-3", "1000000", "-1e6", "0.1e-320", "9007199254740993"]
)


def _row(values: list[str]) -> str:
    return "[" + ", ".join(values) + "]"


@st.composite
def _batch_texts(draw: st.DrawFn) -> bytes:
    plain_row = st.lists(_plain_number, min_size=4, max_size=4).map(_row)
    near_miss = st.lists(_number_text, min_size=3, max_size=5).map(_row) | _number_text
    rows = draw(st.lists(st.one_of(plain_row, plain_row, plain_row, near_miss), max_size=5))
    members = [f'"instances": [{",".join(rows)}]']
    members += draw(
        st.lists(
            st.sampled_from(
                [
                    '"probabilities": true',
                    '"probabilities": false',
                    '"probabilities": 1',
                    '"instances": [[1, 2, 3, 4]]',
                    '"instan\\u0063es": []',
                    '"features": [1]',
                    '"x": null',
                    '"probabilities": {"a": 1}',
                ]
            ),
            max_size=draw(st.sampled_from([0, 0, 1, 2])),
        )
    )
    members = draw(st.permutations(members))
    space = draw(st.sampled_from(["", " ", "\n", "\t"]))
    text = "{" + space + ("," + space).join(members) + space + "}"
    prefix = draw(st.sampled_from([b"", b"", b" ", b"\xef\xbb\xbf"]))
    return prefix + text.encode()


_SEED_FLAGS = frozenset({"probabilities"})


def _general_call(protocol: Any, body: bytes) -> Any:
    """``protocol.parse`` with the simdjson path switched off."""
    module = sys.modules[type(protocol).__module__]
    with mock.patch.object(module, "plain_batch", return_value=None):
        return protocol.parse(body, NO_HEADERS)


@seed(20261201)
@settings(max_examples=500, deadline=None)
@given(body=_batch_texts())
def test_plain_batches_parse_as_the_general_path_does(body: bytes) -> None:
    """Whenever the simdjson path takes a body, the general path gives the same call."""
    for protocol in (SeedProtocol(), KServeV1Protocol()):
        protocol.n_features = 4
        allowed = _SEED_FLAGS if isinstance(protocol, SeedProtocol) else frozenset()
        fast = plain_batch(body, 4, protocol.max_rows, allowed)
        if fast is None:
            continue
        general = _general_call(protocol, body)
        matrix, flags = fast
        assert np.asarray(general.rows, dtype=np.float64).tobytes() == matrix.tobytes()
        assert general.probabilities == flags.get("probabilities", False)


def test_out_of_range_values_get_the_librarys_message_on_either_path() -> None:
    """The simdjson path does not repeat the library's range check: the library refuses."""
    model = iris_model.train(seed=42).model
    body = b'{"instances": [[1, 2, 3, 1e305]]}'
    batch = plain_batch(body, 4, 10_000, _SEED_FLAGS)
    assert batch is not None
    messages = []
    for rows in (batch[0], [[1, 2, 3, 1e305]]):
        with pytest.raises(iris_model.InvalidInputError) as error:
            model.classify(rows, probabilities=False)
        messages.append(str(error.value))
    assert messages[0] == messages[1]
    assert "too large for this model's scorer" in messages[0]


@pytest.mark.parametrize(
    ("body", "n_features"),
    [
        (b'{"instances": [[1, 2, 3, [4, 5, 6, 7]], 8]}', 4),  # simdjson would flatten it
        (b'{"instances": [[1, 2, 3], [4, 5, 6, 7, 8]]}', 4),  # ragged, right total
        (b'{"instances": [[], [1, 2]]}', 1),  # an empty row beside a long one
        (b'{"instances": [[1, 2, 3, 4]], "instances": [[5, 6, 7, 8]]}', 4),
        (b'{"instances": [[1, 2, 3, 4]], "instan\\u0063es": [[5, 6, 7, 8]]}', 4),
        (b'\xef\xbb\xbf{"instances": [[1, 2, 3, 4]]}', 4),
        (b'{"instances": [[1, 2, 3, 4]], "probabilities": "yes"}', 4),
        (b'{"instances": [[1, 2, 3, true]]}', 4),
        (b'{"instances": [[1, 2, 3, 1e400]]}', 4),
        (b'{"instances": [[1, 2, 3, 4]], "x": {"y": [1, 2, 3, 4]}}', 4),
        (b'{"instances": []}', 4),
    ],
)
def test_plain_batch_leaves_every_near_miss_to_the_general_path(
    body: bytes, n_features: int
) -> None:
    assert plain_batch(body, n_features, 10_000, _SEED_FLAGS) is None


def test_plain_batch_takes_a_plain_batch_with_its_flag() -> None:
    found = plain_batch(
        b'{"probabilities": true, "instances": [[1, 2], [3.5, -0.0]]}', 2, 10, _SEED_FLAGS
    )
    assert found is not None
    matrix, flags = found
    assert matrix.tolist() == [[1.0, 2.0], [3.5, -0.0]]
    assert flags == {"probabilities": True}
    assert plain_batch(b'{"instances": [[1, 2], [3, 4], [5, 6]]}', 2, 2) is None  # over max_rows


def test_v2_json_rows_of_numbers_reach_the_library_as_a_matrix() -> None:
    """The general path's number_rows turns number-only rows into a matrix, lists otherwise."""
    protocol = OpenInferenceProtocol("m", 2)
    protocol.n_features = 2
    tensor = {"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [1, 2.5, 3, 4]}
    call = protocol.parse(encode({"inputs": [tensor]}), NO_HEADERS)
    assert isinstance(call.rows, np.ndarray)
    assert call.rows.tolist() == [[1.0, 2.5], [3.0, 4.0]]
    tensor["data"] = [1, 2.5, 3, True]
    call = protocol.parse(encode({"inputs": [tensor]}), NO_HEADERS)
    assert call.rows == [[1, 2.5], [3, True]]  # left to the library, which names the bool
