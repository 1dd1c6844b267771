"""A sensible default pipeline for a schema: what ``iris-model train --data`` fits.

Numbers are scaled (after a median imputer where values may be missing), strings,
categories and booleans one-hot encoded (unknown values ignored; a most-frequent imputer
where values may be missing). Then one of a short list of
classifiers (:data:`ESTIMATORS`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from iris_model.schema import Schema

#: The classifiers ``--estimator`` names, each seeded.
ESTIMATORS: Final[dict[str, Callable[[int], Any]]] = {
    "logistic": lambda seed: LogisticRegression(max_iter=1000, random_state=seed),
    "random-forest": lambda seed: RandomForestClassifier(random_state=seed),
    "hist-gradient-boosting": lambda seed: HistGradientBoostingClassifier(random_state=seed),
}


def default_pipeline(schema: Schema, estimator: str = "logistic", seed: int = 42) -> Pipeline:
    """A ColumnTransformer for ``schema``'s column types, then the named classifier.

    Columns are selected by position, so the pipeline takes a DataFrame or a matrix alike.

    Raises:
        KeyError: ``estimator`` is not one of :data:`ESTIMATORS`.
    """
    classifier = ESTIMATORS[estimator](seed)
    groups: dict[str, list[int]] = {"numbers": [], "text": [], "flags": []}
    missing: dict[str, bool] = dict.fromkeys(groups, False)
    for k, column in enumerate(schema.columns):
        group = "numbers" if column.numeric else "flags" if column.type == "boolean" else "text"
        groups[group].append(k)
        missing[group] = missing[group] or column.nullable
    parts = []
    for group, positions in groups.items():
        if not positions:
            continue
        steps: list[Any] = []
        if missing[group]:
            strategy = "median" if group == "numbers" else "most_frequent"
            steps.append(SimpleImputer(strategy=strategy))
        if group == "numbers":
            steps.append(StandardScaler())
        else:
            steps.append(OneHotEncoder(handle_unknown="ignore"))
        parts.append((group, make_pipeline(*steps), positions))
    return make_pipeline(ColumnTransformer(parts), classifier)
