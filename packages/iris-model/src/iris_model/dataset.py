"""The Iris data set that ships with scikit-learn, and its fixed schema."""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
from sklearn.datasets import load_iris

from iris_model.errors import IrisModelError

FEATURE_NAMES: Final[tuple[str, ...]] = (
    "sepal length (cm)",
    "sepal width (cm)",
    "petal length (cm)",
    "petal width (cm)",
)
CLASS_NAMES: Final[tuple[str, ...]] = ("setosa", "versicolor", "virginica")


def load_dataset() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Return the 150 Iris measurements and their class indices.

    Returns:
        ``(X, y)``: ``X`` of shape (150, 4) in the order of ``FEATURE_NAMES``, ``y`` of
        shape (150,) holding indices into ``CLASS_NAMES``.
    """
    bunch = load_iris()
    # Guard the schema the rest of the library (and every client) relies on.
    if tuple(bunch.feature_names) != FEATURE_NAMES or tuple(bunch.target_names) != CLASS_NAMES:
        raise IrisModelError("scikit-learn's bundled Iris data no longer has the expected schema")
    return np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target, dtype=np.int64)
