"""Notebook plots render headless and show what they claim."""

from __future__ import annotations

import matplotlib as mpl

mpl.use("Agg")  # headless: no display in CI

import matplotlib.pyplot as plt
import pandas as pd
import pytest

import iris_model
from iris_model import FEATURE_NAMES, TrainingResult
from iris_model.plotting import plot_confusion_matrix, plot_probabilities


@pytest.fixture(autouse=True)
def _close_figures() -> None:
    yield
    plt.close("all")


def test_confusion_matrix_is_annotated_with_counts(training: TrainingResult, tmp_path) -> None:
    """Each cell shows its count, axes name the classes, and it saves as PNG."""
    ax = plot_confusion_matrix(training.evaluation)
    counts = sorted(int(t.get_text()) for t in ax.texts)
    assert sum(counts) == training.evaluation.n_test
    assert [t.get_text() for t in ax.get_xticklabels()] == list(training.evaluation.classes)
    assert "accuracy" in ax.get_title()
    ax.figure.savefig(tmp_path / "cm.png")
    assert (tmp_path / "cm.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_probability_bars_match_predict_proba(training: TrainingResult) -> None:
    """One bar per row and class, as long as the class probability."""
    rows = [[5.1, 3.5, 1.4, 0.2], [6.3, 3.3, 6.0, 2.5]]
    _, ax = plt.subplots()
    assert plot_probabilities(training.model, rows, ax=ax) is ax
    widths = sorted(round(p.get_width(), 9) for p in ax.patches)
    expected = sorted(round(p, 9) for p in training.model.predict_proba(rows).ravel())
    assert widths == expected
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "setosa",
        "versicolor",
        "virginica",
    ]


def test_plots_take_a_loaded_model(training: TrainingResult, tmp_path) -> None:
    """plot_confusion_matrix(iris_model.load(dir)) draws the saved evaluation."""
    loaded = iris_model.load(iris_model.save(training.model, tmp_path))
    ax = plot_confusion_matrix(loaded)
    assert sum(int(t.get_text()) for t in ax.texts) == training.evaluation.n_test


def test_probability_rows_are_labelled_and_the_legend_is_outside(training: TrainingResult) -> None:
    """Row labels come from a DataFrame's index (or labels=); the legend sits right of the bars."""
    frame = pd.DataFrame(
        [[5.1, 3.5, 1.4, 0.2], [6.3, 3.3, 6.0, 2.5]], columns=FEATURE_NAMES, index=["a", "b"]
    )
    ax = plot_probabilities(training.model, frame)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    ax.figure.canvas.draw()
    legend_box = ax.get_legend().get_window_extent()
    assert legend_box.x0 >= ax.get_window_extent().x1  # never over a bar
    ax2 = plot_probabilities(training.model, frame.to_numpy(), labels=["x", "y"])
    assert [t.get_text() for t in ax2.get_yticklabels()] == ["x", "y"]
    with pytest.raises(ValueError, match="1 labels for 2 rows"):
        plot_probabilities(training.model, frame, labels=["x"])
