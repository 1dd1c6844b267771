"""orjson-first decoding gives exactly the strict decoder's value or error, never another one."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, seed, settings
from hypothesis import strategies as st

from inference_server.http import strictjson
from inference_server.http.strictjson import InvalidJSONError


def _strict(data: bytes) -> tuple[str, Any]:
    """The reference: the strict stdlib decoder alone (the server's behaviour before orjson)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return ("error", "utf-8")
    try:
        return ("value", strictjson._DECODER.decode(text))
    except (ValueError, RecursionError) as error:
        return ("error", type(error).__name__)


def _served(data: bytes) -> tuple[str, Any]:
    try:
        return ("value", strictjson.decode(data).value)
    except InvalidJSONError:
        return ("error", None)


def _same(a: Any, b: Any) -> bool:
    """Equal values of equal types all the way down (1 and 1.0 differ; NaN never appears)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return bool(a == b)


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": 1, "a": 2}',
        b'{"a": "x:y", "a": 2}',  # a ':' in a string makes up for the dropped key
        b'{"a": "{", "b": {"c": 1, "c": 2}}',  # a '{' in a string
        b'{"k": "{:", "x": 1, "x": {"y": 1}}',  # the dropped value holds an object
        b'{"features": [1, 2, 3, 4], "features": [5, 6, 7, 8]}',
        b'[{"a": 1}, {"b": 2, "b": 3}]',
        b'[1, {"a": 1, "a": 1}]',  # an object behind a scalar in a list
        b'{"inputs": [{"name": "x", "name": "y"}]}',
    ],
)
def test_duplicate_keys_are_rejected_even_behind_strings(body: bytes) -> None:
    """Braces or colons inside strings cannot hide a duplicate key from the proof."""
    with pytest.raises(InvalidJSONError, match="duplicate key"):
        strictjson.decode(body)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"18446744073709551616", 18446744073709551616),  # > 64 bits: orjson makes a float
        (b"-9223372036854775809", -9223372036854775809),
        (b'{"features": [1e400, 1, 1, 1]}', {"features": [math.inf, 1, 1, 1]}),
        (b'"\\ud800"', "\ud800"),  # lone surrogate: orjson refuses, the stdlib keeps it
        (b"[" * 300 + b"]" * 300, None),  # deep, still within the stdlib's reach
    ],
)
def test_values_orjson_would_change_come_from_the_strict_decoder(
    body: bytes, expected: Any
) -> None:
    """Big integers, infinities and lone surrogates keep the strict decoder's value."""
    kind, value = _served(body)
    assert kind == "value"
    if expected is not None:
        assert _same(value, expected)
    assert _strict(body) == ("value", value) or _same(_strict(body)[1], value)


def test_orjson_value_is_used_for_ordinary_bodies(monkeypatch: pytest.MonkeyPatch) -> None:
    """A normal batch never touches the stdlib decoder (that is the point of the change)."""

    def forbidden(_text: str) -> Any:
        raise AssertionError("the strict decoder was used")

    monkeypatch.setattr(strictjson._DECODER, "decode", forbidden)
    rows = [[5.1, 3.5, 1.4, 0.2]] * 1000
    assert strictjson.decode(json.dumps({"instances": rows}).encode()).value == {"instances": rows}
    v2 = {
        "id": "req-1",
        "inputs": [{"name": "i", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}],
    }
    assert strictjson.decode(json.dumps(v2).encode()).value["inputs"][0]["shape"] == [1, 4]


def test_deep_nesting_is_decided_by_the_strict_decoder() -> None:
    """Bodies nested deeper than the fast limit get the strict decoder's answer."""
    deep = b"[" * 900 + b"]" * 900
    assert strictjson.decode_if_proven(deep) is None
    shallow = b'{"a": ' + b"[" * 200 + b'"]]]"' + b"]" * 200 + b"}"
    assert strictjson.decode_if_proven(shallow) is not None


# JSON text built from fragments, so that duplicate keys, tricky strings, big and odd numbers
# and near-misses (NaN, trailing commas) are common, not one in a million.
_keys = st.sampled_from(["a", "b", "features", "instances", "x:y", "{", "}", ":", "é", "\\u0041"])
_numbers = st.sampled_from(
    ["0", "-0", "1", "-1.5", "5.1", "1e3", "1E-3", "1e400", "-1e400", "0.1e-400", "NaN",
     "Infinity", "-Infinity", "18446744073709551615", "18446744073709551616",
     "-9223372036854775808", "-9223372036854775809", "1" * 25, "01", "1.", ".5", "true",
     "false", "null"]
)  # fmt: skip
_strings = st.sampled_from(
    ['""', '"a"', '":"', '"{"', '"}"', '"\\"{:"', '"\\ud800"', '"\\ud83d\\ude00"', '"\\n"', '"\t"']
)


def _json_text() -> st.SearchStrategy[str]:
    scalars = _numbers | _strings | st.floats(allow_nan=False).map(repr) | st.integers().map(str)

    def containers(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        arrays = st.lists(children, max_size=5).map(lambda items: "[" + ", ".join(items) + "]")
        pairs = st.lists(st.tuples(_keys, children), max_size=5)
        objects = pairs.map(lambda kv: "{" + ", ".join(f'"{k}": {v}' for k, v in kv) + "}")
        return arrays | objects

    text: st.SearchStrategy[str] = st.recursive(scalars, containers, max_leaves=30)
    return text


@seed(20261127)
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_json_text(), trailing=st.sampled_from(["", " ", "\n", ",", "x"]))
@example(text='{"a": "x:y", "a": 2}', trailing="")
@example(text='{"a": 1, "b": {"a": 1}}', trailing="")
def test_orjson_path_agrees_with_the_strict_decoder(text: str, trailing: str) -> None:
    """Value or rejection: loads() (orjson first) and the strict decoder always agree."""
    data = (text + trailing).encode("utf-8", "surrogatepass")
    expected = _strict(data)
    kind, value = _served(data)
    assert kind == expected[0], (data, expected)
    if kind == "value":
        assert _same(value, expected[1]), (data, value, expected[1])


def test_duplicate_keys_are_found_without_decoding_number_arrays(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A duplicate key behind a large batch is found in a skeleton holding no numbers."""
    decoded: list[str] = []
    decode = strictjson._DECODER.decode

    def recording(text: str) -> Any:
        decoded.append(text)
        return decode(text)

    monkeypatch.setattr(strictjson._DECODER, "decode", recording)
    rows = json.dumps([[5.1, 3.5, 1.4, 0.2]] * 10_000)
    with pytest.raises(InvalidJSONError, match="duplicate key 'instances'"):
        strictjson.decode(f'{{"instances": {rows}, "instances": 0}}'.encode())
    assert decoded == ['{"instances": [[]' + ", []" * 9_999 + '], "instances": 0}']


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": "x:y", "b": [1, 2]}',
        b'{"a": "{", "b": {"c": [1.5e3, -2]}}',
        b'{"k": "[1, 2]", "l": "[1, 2]"}',  # arrays inside strings stay as they are
        b'{"k\\"[1]": 1, "k\\"[2]": 2}',
    ],
)
def test_colons_and_braces_in_strings_keep_orjsons_value(body: bytes) -> None:
    """When counting fails only because of strings, the skeleton clears the body."""
    decoded = strictjson.decode_if_proven(body)
    assert decoded is not None
    assert decoded.value == json.loads(body)


def test_skeleton_keeps_strings_and_empties_number_arrays() -> None:
    body = b'{"a[1]": [1, -2.5e3, 3], "b": ["[1]", [4, 5]], "c": [[], [true]]}'
    assert strictjson.skeleton(body) == (b'{"a[1]": [], "b": ["[1]", []], "c": [[], [true]]}')


@pytest.mark.parametrize(
    ("body", "counts"),
    [
        (b'{"a": [1, 2.5e3], "b": true, "c": null, "d": "x:{t}"}', (5, 1, 1, 4, 2)),
        (b'[false, "f", {"n": [[]]}]', (2, 1, 3, 1, 1)),
        (b'["\\\\", "\\"t"]', (2, 0, 1, 0, 0)),
    ],
)
def test_outline_counts_outside_strings(body: bytes, counts: tuple[int, ...]) -> None:
    outline = strictjson.decode(body).outline
    assert (outline.strings, outline.objects, outline.arrays, outline.keys, outline.literals) == (
        counts
    )
    assert outline.depth() == strictjson.max_depth(body)


#: The string pattern before it was made possessive: one step per byte, same matches.
_BACKTRACKING_STRING = rb'"(?:[^"\\]|\\.)*"'


@given(
    st.lists(
        st.one_of(
            st.text(alphabet='ab"\\/{}[]:,é\x00\n'),
            st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=3),
            st.integers(),
        ),
        max_size=6,
    ),
    st.sampled_from([b"", b'"', b"\\", b'"\\', b'\\"']),
)
def test_string_patterns_match_as_the_backtracking_ones(values: list[Any], tail: bytes) -> None:
    """The possessive string patterns remove and keep exactly what the old ones did.

    Valid JSON texts with strings full of quotes and backslashes, and invalid ones cut short
    by a trailing quote or backslash.
    """
    old_string = re.compile(_BACKTRACKING_STRING)
    old_skeleton = re.compile(rb"(" + _BACKTRACKING_STRING + rb")|(\[)[-+.eE0-9\s,]*(\])")
    data = json.dumps(values).encode() + tail
    assert strictjson.without_strings(data) == old_string.sub(b"", data)
    assert strictjson.Outline.of(data).strings == old_string.subn(b"", data)[1]
    assert strictjson.skeleton(data) == old_skeleton.sub(rb"\1\2\3", data)
