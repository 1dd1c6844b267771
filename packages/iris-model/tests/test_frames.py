"""pandas input is matched by column name; pandas output carries class names and the index."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from iris_model import FEATURE_NAMES, InvalidInputError, IrisModel
from iris_model.dataset import load_dataset


@pytest.fixture(scope="module")
def flowers() -> pd.DataFrame:
    features, _ = load_dataset()
    return pd.DataFrame(
        features[::10], columns=list(FEATURE_NAMES), index=[f"f{k}" for k in range(15)]
    )


def test_reordered_columns_give_the_same_predictions(
    trained_model: IrisModel, flowers: pd.DataFrame
) -> None:
    """A DataFrame is matched by name: reversing its columns changes nothing."""
    expected = trained_model.predict(flowers.to_numpy())
    reordered = flowers[list(reversed(FEATURE_NAMES))]
    assert trained_model.predict(flowers).tolist() == expected.tolist()
    assert trained_model.predict(reordered).tolist() == expected.tolist()
    assert np.array_equal(
        trained_model.predict_proba(reordered), trained_model.predict_proba(flowers)
    )
    assert len(set(expected.tolist())) == 3  # the frame really spans the classes


def test_a_series_is_one_row(trained_model: IrisModel, flowers: pd.DataFrame) -> None:
    """A Series indexed by feature names is one row, in any order."""
    row = flowers.iloc[0]
    assert (
        trained_model.predict(row[::-1]).tolist()
        == trained_model.predict(flowers.iloc[:1]).tolist()
    )


def test_a_list_of_numpy_rows_works(trained_model: IrisModel, flowers: pd.DataFrame) -> None:
    """list(array) is a batch of rows, like the array itself."""
    matrix = flowers.to_numpy()
    assert trained_model.predict(list(matrix)).tolist() == trained_model.predict(matrix).tolist()


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda f: f.drop(columns=["petal width (cm)"]), "missing column 'petal width (cm)'"),
        (lambda f: f.assign(species="x"), "unknown column 'species'"),
        (
            lambda f: f.rename(columns={"sepal length (cm)": "sepal_length"}),
            "missing column 'sepal length (cm)'; unknown column 'sepal_length'",
        ),
        (lambda f: f.iloc[:0], "empty input"),
    ],
    ids=["missing", "unknown", "renamed", "empty"],
)
def test_column_errors_name_the_column(
    trained_model: IrisModel, flowers: pd.DataFrame, change: object, fragment: str
) -> None:
    """A missing or unknown column is refused with its name, not by printing the frame."""
    with pytest.raises(InvalidInputError) as info:
        trained_model.predict(change(flowers))  # type: ignore[operator]
    assert fragment in str(info.value)
    assert len(str(info.value)) < 400


def test_duplicate_columns_are_refused(trained_model: IrisModel, flowers: pd.DataFrame) -> None:
    """Two columns of one name are ambiguous."""
    doubled = pd.concat([flowers, flowers[["sepal width (cm)"]]], axis=1)
    with pytest.raises(InvalidInputError, match="duplicate column 'sepal width"):
        trained_model.predict(doubled)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (np.nan, "expected a finite number, got nan"),
        (np.inf, "expected a finite number, got inf"),
        (1e300, "is too large for this model"),
        ("1.4", "expected a finite number, got '1.4'"),
        (True, "got True"),
        (None, "got null"),
    ],
    ids=["nan", "inf", "range", "string", "bool", "none"],
)
def test_row_errors_name_the_index_label_and_column(
    trained_model: IrisModel, flowers: pd.DataFrame, value: object, fragment: str
) -> None:
    """Bad values are refused with the frame's index label and the column's name."""
    bad = flowers.astype(object) if not isinstance(value, float) else flowers.copy()
    bad.loc["f7", "petal length (cm)"] = value
    with pytest.raises(InvalidInputError) as info:
        trained_model.predict(bad)
    assert "row 'f7', column 'petal length (cm)'" in str(info.value)
    assert fragment in str(info.value)


def test_nullable_and_integer_columns(trained_model: IrisModel, flowers: pd.DataFrame) -> None:
    """Pandas' nullable dtypes work when complete, and a missing value names its row."""
    ints = flowers.round().astype("Int64")
    assert (
        trained_model.predict(ints).tolist() == trained_model.predict(ints.to_numpy(float)).tolist()
    )
    ints.loc["f3", "sepal width (cm)"] = pd.NA
    with pytest.raises(InvalidInputError, match=r"row 'f3', column 'sepal width \(cm\)'"):
        trained_model.predict(ints)


def test_predict_proba_as_frame(trained_model: IrisModel, flowers: pd.DataFrame) -> None:
    """as_frame=True: class-named columns and the input's index."""
    frame = trained_model.predict_proba(flowers[::-1], as_frame=True)
    assert list(frame.columns) == ["setosa", "versicolor", "virginica"]
    assert list(frame.index) == list(flowers.index[::-1])
    np.testing.assert_array_equal(frame.to_numpy(), trained_model.predict_proba(flowers[::-1]))
    plain = trained_model.predict_proba([[5.1, 3.5, 1.4, 0.2]], as_frame=True)
    assert list(plain.index) == [0]


def test_predict_labels_as_frame(trained_model: IrisModel, flowers: pd.DataFrame) -> None:
    """The labels variant is a Series named 'label' with the input's index."""
    labels = trained_model.predict_labels(flowers, as_frame=True)
    assert isinstance(labels, pd.Series)
    assert labels.name == "label"
    assert list(labels.index) == list(flowers.index)
    assert labels.tolist() == trained_model.predict_labels(flowers)


def test_the_library_imports_and_predicts_without_pandas() -> None:
    """Pandas is optional: with it unimportable, training, saving and loading still work."""
    code = (
        "import sys, tempfile\n"
        "class NoPandas:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'pandas': raise ImportError('no pandas here')\n"
        "sys.meta_path.insert(0, NoPandas())\n"
        "import iris_model\n"
        "m, _ = iris_model.train()\n"
        "assert m.predict([[5.1, 3.5, 1.4, 0.2]]).tolist() == [0]\n"
        "m = iris_model.load(iris_model.save(m, tempfile.mkdtemp()))\n"
        "assert m.predict_labels([[5.1, 3.5, 1.4, 0.2]]) == ['setosa']\n"
        "assert 'pandas' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
