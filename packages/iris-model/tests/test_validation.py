"""Strict input validation: every malformed input is refused with a message naming the spot."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iris_model import BatchTooLargeError, InvalidInputError, IrisModel, validation

GOOD = [5.1, 3.5, 1.4, 0.2]

# (id, rows, a fragment the message must contain)
MALFORMED: list[tuple[str, Any, str]] = [
    ("none", None, "got null"),
    ("string", "5.1,3.5,1.4,0.2", "(str)"),
    ("dict", {"features": GOOD}, "unknown column 'features'"),
    ("number", 5.1, "(float)"),
    ("empty-list", [], "empty input"),
    ("empty-row", [[]], "row 0: expected 4 numbers, got 0"),
    ("too-few", [5.1, 3.5, 1.4], "row 0: expected 4 numbers, got 3"),
    ("too-many", [5.1, 3.5, 1.4, 0.2, 9.9], "row 0: expected 4 numbers, got 5"),
    ("bool", [5.1, True, 1.4, 0.2], "row 0, column 1: expected a finite number, got True (bool)"),
    ("numpy-bool", [5.1, 3.5, np.bool_(False), 0.2], "row 0, column 2"),
    ("str-number", [5.1, 3.5, "1.4", 0.2], "row 0, column 2: expected a finite number, got '1.4'"),
    ("null-value", [5.1, 3.5, 1.4, None], "row 0, column 3: expected a finite number, got null"),
    ("nan", [math.nan, 3.5, 1.4, 0.2], "row 0, column 0: expected a finite number, got nan"),
    ("inf", [5.1, math.inf, 1.4, 0.2], "row 0, column 1: expected a finite number, got inf"),
    ("-inf", [5.1, 3.5, -math.inf, 0.2], "row 0, column 2: expected a finite number, got -inf"),
    ("huge-int", [10**400, 3.5, 1.4, 0.2], "row 0, column 0:"),
    (
        "out-of-range",
        [5.1, 3.5, 1.4, 1e305],
        "row 0, column 3: 1e+305 is too large for this model's scorer",
    ),
    (
        "out-of-range-neg",
        [[1, 2, 3, 4], [-2e301, 3.5, 1.4, 0.2]],
        "row 1, column 0: -2e+301 is too large",
    ),
    (
        "array-out-of-range",
        np.array([GOOD, [1.0, 1.0, 5e307, 1.0]]),
        "row 1, column 2: 5e+307 is too large",
    ),
    ("nested", [5.1, [3.5], 1.4, 0.2], "row 0, column 1: expected a finite number, got a list"),
    ("ragged", [GOOD, [5.1, 3.5, 1.4]], "row 1: expected 4 numbers, got 3"),
    ("row-not-list", [GOOD, 5.1], "row 1: expected a list of 4 numbers, got 5.1 (float)"),
    ("bad-in-row-2", [GOOD, GOOD, [1, 2, "x", 4]], "row 2, column 2"),
    ("complex", [5.1, 3.5, 1.4, 1j], "row 0, column 3"),
    ("array-str", np.array([["a", "b", "c", "d"]]), "dtype <U1"),
    ("array-bool", np.ones((2, 4), dtype=bool), "dtype bool"),
    ("array-shape", np.zeros((2, 3)), "got shape (2, 3)"),
    ("array-3d", np.zeros((1, 2, 4)), "got shape (1, 2, 4)"),
    ("array-empty", np.zeros((0, 4)), "empty input"),
    ("array-nan", np.array([GOOD, [1.0, np.nan, 1.0, 1.0]]), "row 1, column 1"),
    ("array-object-none", np.array([[1.0, None, 1.0, 1.0]], dtype=object), "row 0, column 1"),
]


@pytest.mark.parametrize(
    ("rows", "fragment"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED]
)
def test_malformed_input_raises_the_domain_error(
    trained_model: IrisModel, rows: Any, fragment: str
) -> None:
    """It refuses every malformed input with InvalidInputError naming what is wrong."""
    for method in (trained_model.predict, trained_model.predict_proba, trained_model.validate):
        with pytest.raises(InvalidInputError) as info:
            method(rows)
        assert fragment in str(info.value)
        assert not isinstance(info.value, BatchTooLargeError)


def test_long_values_are_shortened_in_messages(trained_model: IrisModel) -> None:
    """It keeps error messages short even for huge offending values."""
    with pytest.raises(InvalidInputError) as info:
        trained_model.predict([["x" * 1000, 1, 1, 1]])
    assert len(str(info.value)) < 120


@pytest.mark.parametrize(
    "rows",
    [
        [GOOD] * 11,
        np.zeros((11, 4)),
    ],
    ids=["list", "array"],
)
def test_batches_over_the_limit_raise_batch_too_large(trained_model: IrisModel, rows: Any) -> None:
    """It refuses a batch over max_rows with BatchTooLargeError, a kind of InvalidInputError."""
    model = IrisModel(trained_model.estimator, max_rows=10)
    with pytest.raises(BatchTooLargeError, match="batch of 11 rows exceeds the limit of 10"):
        model.predict(rows)
    assert model.predict(rows[:10]).shape == (10,)


@pytest.mark.parametrize(
    "rows",
    [
        GOOD,
        [GOOD],
        (5.1, 3.5, 1.4, 0.2),
        [[5, 3, 1, 0]],
        [np.float64(5.1), np.float32(3.5), np.int64(1), 0.2],
        np.array(GOOD),
        np.array([GOOD], dtype=np.float32),
        np.array([[5, 3, 1, 0]], dtype=np.int64),
        np.array([GOOD], dtype=object),
    ],
    ids=["row", "batch", "tuple", "ints", "numpy-scalars", "1d", "float32", "int64", "object"],
)
def test_accepts_real_numbers_in_any_plain_container(trained_model: IrisModel, rows: Any) -> None:
    """It accepts one row or a batch, as lists, tuples or arrays of real numbers."""
    matrix = trained_model.validate(rows)
    assert matrix.dtype == np.float64
    assert matrix.shape == (1, 4)
    assert matrix.flags.c_contiguous
    np.testing.assert_allclose(matrix[0], np.asarray(rows, dtype=np.float64).reshape(-1), rtol=1e-6)


def test_no_global_magnitude_bound(trained_model: IrisModel) -> None:
    """Prices in millions and far beyond are numbers like any other (no ±1e6 bound)."""
    bound = 1276835.1e9
    assert trained_model.validate([[bound, -bound, 0, 1]]).tolist() == [[bound, -bound, 0.0, 1.0]]
    assert trained_model.validate(np.array([bound, -bound, 0, 1])).shape == (1, 4)


def test_validation_keeps_values_exactly(trained_model: IrisModel) -> None:
    """It converts without rounding: what comes out is what went in."""
    rows = [[0.1, 1e-300, 123456.789, -2.5], [1, 2, 3, 4]]
    assert trained_model.validate(rows).tolist() == [
        [0.1, 1e-300, 123456.789, -2.5],
        [1.0, 2.0, 3.0, 4.0],
    ]


_CELLS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-2e6, max_value=2e6),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, 0.0, 1.0, -0.0, True, False, None, "1", 1j, np.bool_(True)]),
    st.sampled_from([np.float32(1.5), np.int64(1), np.float64(0.0)]),
)
_ROWS = st.lists(
    st.one_of(
        st.lists(_CELLS, min_size=3, max_size=5),
        st.tuples(_CELLS, _CELLS, _CELLS, _CELLS),
        _CELLS,
    ),
    min_size=1,
    max_size=6,
)


def _outcome(convert: Any) -> Any:
    try:
        return convert().tolist()
    except InvalidInputError as error:
        return str(error)


@settings(max_examples=400, deadline=None)
@given(_ROWS)
def test_bulk_conversion_agrees_with_the_value_by_value_walk(rows: list[Any]) -> None:
    """The bulk path may decline a batch, never accept one the walk refuses or differ."""
    batch = rows if isinstance(rows[0], list | tuple) else [rows]
    walked = _outcome(lambda: validation._slow_convert(batch, 4))
    assert _outcome(lambda: validation.to_matrix(rows, n_features=4, max_rows=100)) == walked
    fast = validation._fast_convert(batch, 4)
    if fast is not None:
        assert fast.tolist() == walked
