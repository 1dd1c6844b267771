"""How well a model classifies labelled rows: accuracy, F1, per class, confusion matrix, CV."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from html import escape
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score

from iris_model.errors import InvalidInputError

if TYPE_CHECKING:
    from iris_model.model import IrisModel


_SCORES: Final = ("precision", "recall", "f1-score")


@dataclass(frozen=True, kw_only=True)
class Evaluation:
    """How well a model does on held-out data (and, after training, in cross-validation).

    ``classes`` are the model's class labels, in the order of the confusion matrix's rows
    (true) and columns (predicted). The cross-validation and training-size fields are None
    for an evaluation made by :func:`evaluate` rather than by training.
    """

    accuracy: float
    macro_f1: float
    per_class: dict[str, dict[str, float]]
    confusion_matrix: list[list[int]]
    n_test: int
    classes: tuple[str, ...]
    cv_accuracy_mean: float | None = None
    cv_accuracy_std: float | None = None
    cv_folds: int | None = None
    n_train: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the evaluation as plain JSON-serialisable data."""
        data = asdict(self)
        data["classes"] = list(self.classes)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evaluation:
        """Rebuild an evaluation from :meth:`as_dict`'s output (as stored in a manifest)."""
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        known["classes"] = tuple(known.get("classes", ()))
        return cls(**known)

    def __repr__(self) -> str:
        cv = "" if self.cv_accuracy_mean is None else f", cv_accuracy={self.cv_accuracy_mean:.3f}"
        return (
            f"Evaluation(accuracy={self.accuracy:.3f}, macro_f1={self.macro_f1:.3f}{cv},"
            f" n_test={self.n_test}, classes={len(self.classes)})"
        )

    def _repr_html_(self) -> str:
        """Per-class precision, recall and F1 as an HTML table, headed by the overall scores."""
        rows = "".join(
            f"<tr><th>{escape(name)}</th>"
            + "".join(f"<td>{self.per_class[name][key]:.3f}</td>" for key in _SCORES)
            + f"<td>{int(self.per_class[name]['support'])}</td></tr>"
            for name in self.classes
        )
        header = "".join(f"<th>{key}</th>" for key in (*_SCORES, "support"))
        return (
            f"<p><b>{escape(repr(self))}</b></p>"
            f"<table><tr><th>class</th>{header}</tr>{rows}</table>"
        )

    def __str__(self) -> str:
        width = max(map(len, self.classes))
        header = f"accuracy {self.accuracy:.3f}  macro F1 {self.macro_f1:.3f}"
        if self.cv_folds is not None and self.cv_accuracy_mean is not None:
            header += (
                f"  {self.cv_folds}-fold CV accuracy {self.cv_accuracy_mean:.3f} ± "
                f"{self.cv_accuracy_std or 0:.3f}"
            )
        sizes = f"test {self.n_test}" if self.n_train is None else (
            f"train {self.n_train}, test {self.n_test}"
        )  # fmt: skip
        lines = [f"{header}  ({sizes})", f"{'':{width}}  precision  recall  f1     support"]
        for name in self.classes:
            row = self.per_class[name]
            lines.append(
                f"{name:{width}}  {row['precision']:9.3f}  {row['recall']:6.3f}  "
                f"{row['f1-score']:5.3f}  {int(row['support']):7d}"
            )
        lines.append("confusion matrix (rows: true, columns: predicted)")
        lines += [
            f"{name:{width}}  " + " ".join(f"{n:3d}" for n in row)
            for name, row in zip(self.classes, self.confusion_matrix, strict=True)
        ]
        return "\n".join(lines)


def evaluate(model: IrisModel, X: Any, y: Any) -> Evaluation:  # noqa: N803 - sklearn's names
    """Score ``model`` on labelled rows ``X`` (any input ``predict`` takes) and labels ``y``.

    Args:
        model: The model to evaluate.
        X: The rows: a DataFrame (matched by column name), an array or a list of rows.
        y: One label per row, as the model's estimator was trained with them.

    Returns:
        Accuracy, macro F1, per-class precision/recall/F1 and the confusion matrix.

    Raises:
        InvalidInputError: malformed rows, or a label the model does not know.
    """
    predicted, _ = model._classify_all(X)
    true = model.label_indices(y)
    if len(true) != len(predicted):
        raise InvalidInputError(f"{len(predicted)} rows but {len(true)} labels")
    return summarize(true, predicted, model.classes)


def summarize(true: Any, predicted: Any, classes: tuple[str, ...], **extra: Any) -> Evaluation:
    """Build an :class:`Evaluation` from true and predicted class indices into ``classes``."""
    labels = list(range(len(classes)))
    report = classification_report(
        true, predicted, labels=labels, target_names=list(classes), output_dict=True,
        zero_division=0,
    )  # fmt: skip
    return Evaluation(
        accuracy=float(accuracy_score(true, predicted)),
        macro_f1=float(f1_score(true, predicted, labels=labels, average="macro", zero_division=0)),
        per_class={
            name: {key: float(value) for key, value in report[name].items()} for name in classes
        },
        confusion_matrix=confusion_matrix(true, predicted, labels=labels).tolist(),
        n_test=len(true),
        classes=tuple(classes),
        **extra,
    )


def cv_summary(scores: Any, folds: int) -> dict[str, Any]:
    """The cross-validation fields of an :class:`Evaluation` from per-fold accuracies."""
    return {
        "cv_accuracy_mean": float(np.mean(scores)),
        "cv_accuracy_std": float(np.std(scores)),
        "cv_folds": folds,
    }
