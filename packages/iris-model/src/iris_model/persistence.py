"""Saving and loading models: a joblib file plus a JSON manifest that vouches for it.

Security: joblib files are pickles, and loading a pickle can run arbitrary code. Only load
models from a source you trust. The manifest's sha256 is checked *before* anything is
unpickled, which catches corruption and tampering after the model was saved, but it cannot
make a file that was malicious from the start safe.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import joblib
import sklearn
from sklearn.exceptions import InconsistentVersionWarning

from iris_model.errors import ModelIntegrityError, ModelLoadError
from iris_model.model import DEFAULT_MAX_ROWS, IrisModel

MODEL_FILE: Final = "model.joblib"
MANIFEST_FILE: Final = "model.json"
MANIFEST_FORMAT: Final = 1
_CHUNK: Final = 1 << 20


def save(model: IrisModel, directory: str | os.PathLike[str]) -> Path:
    """Write ``model.joblib`` and its ``model.json`` manifest into ``directory``.

    The manifest records the sha256 and size of the joblib file, the library versions,
    the schema, the metrics and golden input/output pairs. Files are written atomically, so
    a crash never leaves a half-written model behind.

    Args:
        model: The model to save (its metadata is updated with the artifact's digest).
        directory: Created if missing.

    Returns:
        The directory.
    """
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    model_path = target / MODEL_FILE
    with _atomic_path(model_path) as tmp:
        joblib.dump(model.estimator, tmp)
    manifest = {
        **model.metadata,
        "format": MANIFEST_FORMAT,
        "artifact": {
            "file": MODEL_FILE,
            "sha256": file_sha256(model_path),
            "size": model_path.stat().st_size,
        },
    }
    manifest.setdefault("feature_names", list(model.feature_names))
    manifest.setdefault("classes", list(model.classes))
    with _atomic_path(target / MANIFEST_FILE) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    model.metadata = manifest
    return target


def load(directory: str | os.PathLike[str], *, max_rows: int = DEFAULT_MAX_ROWS) -> IrisModel:
    """Load and verify a model saved by :func:`save`.

    In order: read the manifest; check the file's size and sha256 (before unpickling);
    refuse a different scikit-learn version than the one that saved it; unpickle with
    ``InconsistentVersionWarning`` as an error; check the schema; re-run the golden pairs.

    Args:
        directory: A directory holding ``model.joblib`` and ``model.json``.
        max_rows: The largest batch the loaded model accepts.

    Returns:
        The verified model.

    Raises:
        ModelIntegrityError: the file's digest or size differs from the manifest.
        ModelLoadError: anything else that makes the model unfit to serve.
    """
    source = Path(directory)
    manifest = read_manifest(source)
    artifact = manifest.get("artifact")
    if not isinstance(artifact, dict) or not {"sha256", "size"} <= artifact.keys():
        raise ModelLoadError(f"{source / MANIFEST_FILE}: no artifact sha256/size recorded")
    model_path = source / MODEL_FILE
    if not model_path.is_file():
        raise ModelLoadError(f"{model_path}: no such file")
    size = model_path.stat().st_size
    if size != artifact["size"]:
        raise ModelIntegrityError(
            f"{model_path}: size {size} bytes differs from the manifest's {artifact['size']}"
        )
    digest = file_sha256(model_path)
    if digest != artifact["sha256"]:
        raise ModelIntegrityError(
            f"{model_path}: sha256 {digest} differs from the manifest's {artifact['sha256']};"
            " the file is corrupt or was modified after it was saved"
        )
    saved_with = (manifest.get("versions") or {}).get("scikit-learn")
    if saved_with != sklearn.__version__:
        raise ModelLoadError(
            f"{model_path} was saved with scikit-learn {saved_with} but {sklearn.__version__}"
            " is installed; loading across versions is unsupported, retrain or pin the version"
        )
    estimator = _unpickle(model_path)
    feature_names = manifest.get("feature_names") or []
    classes = manifest.get("classes") or []
    _check_schema(estimator, len(feature_names), len(classes), model_path)
    model = IrisModel(
        estimator,
        feature_names=feature_names,
        classes=classes,
        metadata=manifest,
        max_rows=max_rows,
    )
    model.self_test()
    return model


def read_manifest(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the parsed ``model.json`` of a saved model, without touching the model file."""
    path = Path(directory) / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(
            f"{path}: no such file; is this a directory saved by save()?"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path}: unreadable manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise ModelLoadError(f"{path}: not a model manifest of format {MANIFEST_FORMAT}")
    return manifest


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _unpickle(path: Path) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)
        try:
            return joblib.load(path)
        except InconsistentVersionWarning as exc:
            raise ModelLoadError(f"{path}: {exc}") from None
        except Exception as exc:  # unpickling can fail in any way; none of it is servable
            raise ModelLoadError(f"{path}: cannot be unpickled ({type(exc).__name__})") from exc


def _check_schema(estimator: Any, n_features: int, n_classes: int, path: Path) -> None:
    if not (hasattr(estimator, "predict") and hasattr(estimator, "predict_proba")):
        raise ModelLoadError(
            f"{path}: {type(estimator).__name__} is not a probabilistic classifier"
        )
    n_in = getattr(estimator, "n_features_in_", None)
    n_out = len(getattr(estimator, "classes_", ()))
    if n_in != n_features or n_out != n_classes or n_classes == 0:
        raise ModelLoadError(
            f"{path}: the estimator takes {n_in} features and has {n_out} classes, but the"
            f" manifest names {n_features} features and {n_classes} classes"
        )


@contextmanager
def _atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``, moved into place only if the block succeeds."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        # mkstemp creates 0600 files; a model saved at image build time is read by another user.
        tmp.chmod(0o644)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
