"""Notebook plots: the confusion matrix and per-class probabilities.

Needs the ``plot`` extra (``pip install "iris-model[plot]"``). Functions draw on a given
Matplotlib ``Axes`` (or a new figure) and return the ``Axes`` so callers can style it further.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from iris_model.model import IrisModel
from iris_model.training import Evaluation

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def plot_confusion_matrix(evaluation: Evaluation, ax: Axes | None = None) -> Axes:
    """Draw the held-out confusion matrix as an annotated heat map."""
    ax = ax if ax is not None else _new_axes()
    matrix = np.asarray(evaluation.confusion_matrix)
    image = ax.imshow(matrix, cmap="Blues")
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ticks = np.arange(len(evaluation.classes))
    ax.set_xticks(ticks, labels=evaluation.classes)
    ax.set_yticks(ticks, labels=evaluation.classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"Confusion matrix (accuracy {evaluation.accuracy:.3f})")
    threshold = matrix.max() / 2
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(
            j, i, str(count), ha="center", va="center",
            color="white" if count > threshold else "black",
        )  # fmt: skip
    return ax


def plot_probabilities(model: IrisModel, rows: Any, ax: Axes | None = None) -> Axes:
    """Draw each row's class probabilities as grouped horizontal bars."""
    ax = ax if ax is not None else _new_axes()
    probabilities = model.predict_proba(rows)
    n_rows, n_classes = probabilities.shape
    height = 0.8 / n_classes
    positions = np.arange(n_rows)
    for k, name in enumerate(model.classes):
        ax.barh(positions + k * height, probabilities[:, k], height=height, label=name)
    ax.set_yticks(positions + height * (n_classes - 1) / 2, labels=[f"row {i}" for i in positions])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability")
    ax.set_title("Class probabilities")
    ax.legend(loc="lower right")
    return ax


def _new_axes() -> Axes:
    try:
        import matplotlib.pyplot as plt  # noqa: PLC0415 - optional dependency
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError('plotting needs matplotlib: pip install "iris-model[plot]"') from exc
    _, ax = plt.subplots(figsize=(6, 4.5), layout="constrained")
    return ax
