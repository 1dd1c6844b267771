"""Notebook plots: the confusion matrix and per-class probabilities.

Needs matplotlib (the ``plot`` extra of the package). Functions draw on a given
Matplotlib ``Axes`` (or a new figure) and return the ``Axes`` so callers can style it further.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from iris_model.evaluation import Evaluation
from iris_model.model import IrisModel

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def plot_confusion_matrix(source: Evaluation | IrisModel, ax: Axes | None = None) -> Axes:
    """Draw the held-out confusion matrix as an annotated heat map.

    Args:
        source: An evaluation, or a model that carries one (trained, or loaded from disk).
        ax: Where to draw; a new figure by default.
    """
    evaluation = _evaluation(source)
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


def plot_probabilities(
    model: IrisModel, rows: Any, ax: Axes | None = None, *, labels: Sequence[str] | None = None
) -> Axes:
    """Draw each row's class probabilities as grouped horizontal bars.

    Args:
        model: The model to ask.
        rows: Anything :meth:`IrisModel.predict_proba` takes.
        ax: Where to draw; a new figure by default.
        labels: One name per row. Default: a DataFrame's index, else ``row 0``, ``row 1``...
    """
    ax = ax if ax is not None else _new_axes()
    frame = model.predict_proba(rows, as_frame=True) if _is_pandas(rows) else None
    probabilities = model.predict_proba(rows) if frame is None else frame.to_numpy()
    n_rows, n_classes = probabilities.shape
    if labels is None:
        labels = [str(k) for k in frame.index] if frame is not None else [
            f"row {i}" for i in range(n_rows)
        ]  # fmt: skip
    if len(labels) != n_rows:
        raise ValueError(f"{len(labels)} labels for {n_rows} rows")
    height = 0.8 / n_classes
    positions = np.arange(n_rows)
    for k, name in enumerate(model.classes):
        ax.barh(positions + k * height, probabilities[:, k], height=height, label=name)
    ax.set_yticks(positions + height * (n_classes - 1) / 2, labels=list(labels))
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability")
    ax.set_title("Class probabilities")
    # Outside the axes, so it never hides a bar (a probability of 1 reaches the right edge).
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False)
    return ax


def _evaluation(source: Evaluation | IrisModel) -> Evaluation:
    if isinstance(source, Evaluation):
        return source
    evaluation = source.evaluation
    if evaluation is None:
        raise ValueError("the model records no evaluation: pass iris_model.evaluate(model, X, y)")
    return evaluation


def _is_pandas(rows: Any) -> bool:
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(rows, pandas.DataFrame | pandas.Series)


def _new_axes() -> Axes:
    try:
        import matplotlib.pyplot as plt  # noqa: PLC0415 - optional dependency
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("plotting needs matplotlib: pip install matplotlib") from exc
    _, ax = plt.subplots(figsize=(6, 4.5), layout="constrained")
    return ax
