"""The one call path from parsed JSON rows to plain-Python predictions.

The library validates and scores; this module only converts NumPy results to ``int``/
``float``/``str`` (so encoding never meets ``np.int64``) and counts them in the metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app

import iris_model
from inference_server.errors import ApiError
from inference_server.metrics import METRICS_KEY, Metrics

#: Key of the served ``IrisModel`` in ``app.extensions``.
MODEL_KEY = "iris_model"
#: The model's name in KServe V1 and Open Inference Protocol V2 URLs.
MODEL_NAME = "iris"


@dataclass(frozen=True, slots=True)
class Predictions:
    """Predictions for a batch of rows.

    Attributes:
        indices: Class index of each row.
        labels: Class label of each row.
        probabilities: Probability of each class for each row (columns in ``classes`` order),
            or None when not requested.
        classes: The model's class labels.
    """

    indices: list[int]
    labels: list[str]
    probabilities: list[list[float]] | None
    classes: tuple[str, ...]

    def labelled_probabilities(self) -> list[dict[str, float]]:
        """Each row's probabilities keyed by class label."""
        if self.probabilities is None:
            return []
        return [dict(zip(self.classes, row, strict=True)) for row in self.probabilities]


def current_model() -> iris_model.IrisModel:
    """The model served by the current app."""
    model: iris_model.IrisModel = current_app.extensions[MODEL_KEY]
    return model


def predict(rows: Any, *, probabilities: bool) -> Predictions:
    """Validate and score ``rows`` (a list of rows) with the current app's model.

    Raises:
        iris_model.InvalidInputError: Malformed rows (answered with 400).
        iris_model.BatchTooLargeError: More rows than the configured limit (413).
    """
    model = current_model()
    classes_found, proba_found = model.classify(rows, probabilities=probabilities)
    indices: list[int] = classes_found.tolist()
    proba: list[list[float]] | None = None if proba_found is None else proba_found.tolist()
    metrics: Metrics = current_app.extensions[METRICS_KEY]
    metrics.observe_predictions(indices)
    classes = model.classes
    return Predictions(indices, list(map(classes.__getitem__, indices)), proba, classes)


def instances_of(body: dict[str, Any]) -> list[Any]:
    """The ``instances`` rows of a seed or KServe V1 request body.

    Raises:
        ApiError: ``instances`` is not an array of rows (400).
    """
    instances = body.get("instances")
    if not isinstance(instances, list) or (instances and not isinstance(instances[0], list)):
        raise ApiError(400, "'instances' must be an array of rows (arrays of numbers)")
    return instances
