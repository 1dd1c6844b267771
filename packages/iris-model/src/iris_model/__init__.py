"""Train, evaluate, persist and predict with scikit-learn classifiers (Iris by default).

Example:
    >>> import iris_model
    >>> model, evaluation = iris_model.train(seed=42)
    >>> model.predict([[5.1, 3.5, 1.4, 0.2]])
    array([0])
    >>> result = iris_model.train(df[features], df["species"], estimator=RandomForestClassifier())
    >>> result.model.predict_proba(df, as_frame=True)   # columns matched by name
    >>> result.model.schema   # per column: number, integer, boolean, string, category
    >>> iris_model.save(model, "models/iris")
    >>> model = iris_model.load("models/iris")   # verifies sha256, versions, golden pairs
    >>> model.digest                              # pin it: iris_model.load(dir, digest=...)
    'sha256:...'

Model files are pickles; load() unpickles them through an allow-list, so none of their code
runs, but only a pinned digest proves a directory is the one you meant.
"""

from iris_model._version import __version__
from iris_model.dataset import CLASS_NAMES, FEATURE_NAMES
from iris_model.errors import (
    BatchTooLargeError,
    InvalidInputError,
    IrisModelError,
    ModelIntegrityError,
    ModelLoadError,
    ModelSaveError,
    ModelVersionWarning,
    TrainingError,
)
from iris_model.evaluation import Evaluation, evaluate
from iris_model.model import DEFAULT_MAX_ROWS, IrisModel
from iris_model.persistence import load, model_digest, read_manifest, save
from iris_model.schema import Column, Schema, SchemaError
from iris_model.training import TrainingResult, train
from iris_model.validation import MAX_ABS_FEATURE

__all__ = [
    "CLASS_NAMES",
    "DEFAULT_MAX_ROWS",
    "FEATURE_NAMES",
    "MAX_ABS_FEATURE",
    "BatchTooLargeError",
    "Column",
    "Evaluation",
    "InvalidInputError",
    "IrisModel",
    "IrisModelError",
    "ModelIntegrityError",
    "ModelLoadError",
    "ModelSaveError",
    "ModelVersionWarning",
    "Schema",
    "SchemaError",
    "TrainingError",
    "TrainingResult",
    "__version__",
    "evaluate",
    "load",
    "model_digest",
    "read_manifest",
    "save",
    "train",
]
