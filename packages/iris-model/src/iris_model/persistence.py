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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import joblib
import numpy as np
import sklearn
from sklearn.exceptions import InconsistentVersionWarning

from iris_model.errors import (
    IrisModelError,
    ModelIntegrityError,
    ModelLoadError,
    ModelSaveError,
    ModelVersionWarning,
)
from iris_model.model import DEFAULT_MAX_ROWS, IrisModel, golden_pairs

MODEL_FILE: Final = "model.joblib"
MANIFEST_FILE: Final = "model.json"
MANIFEST_FORMAT: Final = 1
_CHUNK: Final = 1 << 20
_N_PROBES: Final = 5


def save(
    model: IrisModel, directory: str | os.PathLike[str], *, version: str | None = None
) -> Path:
    """Write ``model.joblib`` and its ``model.json`` manifest into ``directory``.

    The manifest is complete for any model accepted here, trained by :func:`train` or wrapped
    by hand: the sha256 and size of the joblib file, the runtime versions, the feature names
    and classes, golden input/output pairs (probe rows are made up when the model has none),
    the evaluation (None when the model was never evaluated) and ``model_version``. Before
    anything is replaced, the files are written to a temporary directory and loaded back
    with :func:`load`; a model that would not load is refused with the reason. Files are
    moved into place atomically, so a crash never leaves a half-written file behind.

    Args:
        model: The model to save (its metadata becomes the manifest).
        directory: Created if missing; an existing model in it is replaced.
        version: The model's own version, recorded as ``model_version``. Default:
            ``model.version``.

    Returns:
        The directory.

    Raises:
        ModelSaveError: the model cannot be saved so that it loads again (says why).
    """
    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise ModelSaveError(f"{target} exists and is not a directory")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelSaveError(f"cannot create {target}: {exc.strerror or exc}") from None
    manifest = _manifest(model, version)
    with tempfile.TemporaryDirectory(dir=target, prefix=".saving-") as staging:
        staged = Path(staging)
        try:
            joblib.dump(model.estimator, staged / MODEL_FILE)
        except Exception as exc:  # pickling can fail in any way: a lambda, a lock, a socket
            raise ModelSaveError(
                f"{type(model.estimator).__name__} cannot be pickled: {exc}"
            ) from None
        model_path = staged / MODEL_FILE
        manifest["artifact"] = {
            "file": MODEL_FILE,
            "sha256": file_sha256(model_path),
            "size": model_path.stat().st_size,
        }
        try:
            text = json.dumps(manifest, indent=2, sort_keys=True, allow_nan=False) + "\n"
        except (TypeError, ValueError) as exc:
            raise ModelSaveError(f"the manifest is not plain JSON: {exc}") from None
        (staged / MANIFEST_FILE).write_text(text, encoding="utf-8")
        try:
            load(staged, max_rows=model.max_rows)
        except ModelLoadError as exc:
            raise ModelSaveError(f"refusing to save a model that would not load: {exc}") from None
        for name in (MODEL_FILE, MANIFEST_FILE):
            # 0644: a model saved as root at image build time is read by another user.
            (staged / name).chmod(0o644)
            (staged / name).replace(target / name)
    model.metadata = manifest
    model.version = manifest["model_version"]
    return target


def _manifest(model: IrisModel, version: str | None) -> dict[str, Any]:
    """The manifest of ``model``: its metadata, completed with whatever it lacks."""
    from iris_model.training import runtime_versions  # noqa: PLC0415 - training imports us

    if not model.__sklearn_is_fitted__():
        raise ModelSaveError(f"the model's {type(model.estimator).__name__} is not fitted")
    manifest = {key: value for key, value in model.metadata.items() if key != "artifact"}
    manifest.update(
        {
            "format": MANIFEST_FORMAT,
            "estimator": manifest.get("estimator") or type(model.estimator).__name__,
            "feature_names": list(model.feature_names),
            "classes": list(model.classes),
            # The versions that wrote the pickle, which may differ from those that trained it.
            "versions": runtime_versions(),
            "model_version": version if version is not None else model.version,
            "metrics": manifest.get("metrics"),
        }
    )
    manifest.setdefault("created_at", datetime.now(UTC).isoformat(timespec="seconds"))
    if not manifest.get("golden"):
        manifest["golden"] = golden_pairs(model, _probe_rows(model.n_features))
    return manifest


def _probe_rows(n_features: int) -> Any:
    """Fixed, reproducible rows for a model saved without golden pairs of its own."""
    return np.random.default_rng(0).uniform(-3.0, 3.0, size=(_N_PROBES, n_features)).round(3)


def load(
    directory: str | os.PathLike[str],
    *,
    max_rows: int = DEFAULT_MAX_ROWS,
    allow_version_mismatch: bool = False,
) -> IrisModel:
    """Load and verify a model saved by :func:`save`.

    In order: read the manifest; check the file's size and sha256 (before unpickling);
    refuse a different scikit-learn version than the one that saved it (unless allowed);
    unpickle with ``InconsistentVersionWarning`` as an error (unless allowed); check the
    schema; re-run the golden pairs, which decide in every case.

    Args:
        directory: A directory holding ``model.joblib`` and ``model.json``.
        max_rows: The largest batch the loaded model accepts.
        allow_version_mismatch: Load a model saved with another scikit-learn version, with a
            :class:`ModelVersionWarning`, if its golden pairs still reproduce.

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
    mismatch = saved_with != sklearn.__version__
    if mismatch:
        message = (
            f"{model_path} was saved with scikit-learn {saved_with} but {sklearn.__version__}"
            " is installed"
        )
        if not allow_version_mismatch:
            raise ModelLoadError(
                f"{message}; retrain, install scikit-learn {saved_with}, or load it anyway with"
                " allow_version_mismatch=True (CLI: --allow-version-mismatch), which still"
                " checks its golden pairs"
            )
        warnings.warn(
            f"{message}; loading anyway because the mismatch is allowed, if the golden pairs"
            " reproduce",
            ModelVersionWarning,
            stacklevel=2,
        )
    estimator = _unpickle(model_path, strict=not mismatch)
    feature_names = manifest.get("feature_names") or []
    classes = manifest.get("classes") or []
    _check_schema(estimator, len(feature_names), len(classes), model_path)
    try:
        model = IrisModel(
            estimator,
            feature_names=feature_names,
            classes=classes,
            metadata=manifest,
            max_rows=max_rows,
            version=manifest.get("model_version"),
        )
    except IrisModelError as exc:
        raise ModelLoadError(f"{model_path}: {exc}") from None
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


def _unpickle(path: Path, *, strict: bool = True) -> Any:
    with warnings.catch_warnings():
        # Allowed across versions, scikit-learn's own warning is left to the caller's filters.
        if strict:
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
