"""Saving and loading models: a joblib file plus a JSON manifest that vouches for it.

Security: joblib files are pickles, and a plain ``joblib.load`` runs whatever code a pickle
names. :func:`load` never does: it unpickles through an allow-list of scikit-learn, numpy and
scipy classes (:mod:`iris_model.unpickling`). Before that, the manifest's sha256 catches
corruption and tampering after the model was saved, and a pinned :func:`model_digest` covers
the manifest too (labels, feature names, versions, golden pairs).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import tempfile
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Final

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
from iris_model.schema import Schema, SchemaError
from iris_model.unpickling import ForbiddenGlobalError, restricted_load

MODEL_FILE: Final = "model.joblib"
MANIFEST_FILE: Final = "model.json"
MANIFEST_FORMAT: Final = 1
_CHUNK: Final = 1 << 20
_N_PROBES: Final = 5
# Ours are a few KB; the bound keeps a corrupt or hostile manifest from filling memory.
_MAX_MANIFEST_BYTES: Final = 16 << 20
_log = logging.getLogger(__name__)


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
    model.digest = model_digest(target)
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
            "schema": model.schema.as_dict() if model.schema is not None else None,
            "classes": list(model.classes),
            # The versions that wrote the pickle, which may differ from those that trained it.
            "versions": runtime_versions(),
            "model_version": version if version is not None else model.version,
            "metrics": manifest.get("metrics"),
            # Informative: load() compiles and proves the pipeline again on this machine.
            "scorer": {"kind": model.scorer_kind, "reason": model.compiled_reason},
        }
    )
    manifest.setdefault("created_at", datetime.now(UTC).isoformat(timespec="seconds"))
    if not manifest.get("golden"):
        assert model.schema is not None  # noqa: S101 - a fitted model has one
        try:
            manifest["golden"] = golden_pairs(model, probe_rows(model.schema))
        except Exception as exc:  # the estimator may fail in any way on made-up rows
            raise ModelSaveError(
                f"the model cannot answer probe rows drawn from its schema ({type(exc).__name__}:"
                f" {exc}); fit it with IrisModel.fit() or train(), which record golden pairs"
                " on training rows"
            ) from None
    return manifest


def probe_rows(schema: Schema) -> list[dict[str, Any]]:
    """Fixed, reproducible rows for a model saved without golden pairs of its own.

    Numbers from [-3, 3], integers from 0 to 5, both booleans, and the known values of
    string and category columns (a string column without them gets ``"probe"``).
    """
    rng = np.random.default_rng(0)
    rows: list[dict[str, Any]] = [{} for _ in range(_N_PROBES)]
    for column in schema.columns:
        if column.type == "number":
            values: list[Any] = rng.uniform(-3.0, 3.0, _N_PROBES).round(3).tolist()
        elif column.type == "integer":
            values = rng.integers(0, 6, _N_PROBES).tolist()
        elif column.type == "boolean":
            values = [k % 2 == 0 for k in range(_N_PROBES)]
        else:
            known = list(column.categories or ["probe"])
            values = [known[k % len(known)] for k in range(_N_PROBES)]
        for row, value in zip(rows, values, strict=True):
            row[column.name] = value
    return rows


def load(
    directory: str | os.PathLike[str],
    *,
    max_rows: int = DEFAULT_MAX_ROWS,
    allow_version_mismatch: bool = False,
    digest: str | None = None,
) -> IrisModel:
    """Load and verify a model saved by :func:`save`.

    In order, before anything is unpickled: refuse files or a directory that others may
    write; read the manifest; check the model file's size and sha256; check the directory
    digest against ``digest`` if one is pinned; refuse a different scikit-learn version than
    the one that saved it (unless allowed). Then unpickle through an allow-list
    (:mod:`iris_model.unpickling`: no code from the file runs) with
    ``InconsistentVersionWarning`` as an error (unless allowed), check that the estimator
    agrees with the manifest's features and classes, and re-run the golden pairs, labels
    included, which decide in every case.

    Args:
        directory: A directory holding ``model.joblib`` and ``model.json``.
        max_rows: The largest batch the loaded model accepts.
        allow_version_mismatch: Load a model saved with another scikit-learn version, with a
            :class:`ModelVersionWarning`, if its golden pairs still reproduce.
        digest: The :func:`model_digest` a deployment pinned (``sha256:<hex>``); any other
            content, manifest included, is refused.

    Returns:
        The verified model; its ``digest`` is the directory digest.

    Raises:
        ModelIntegrityError: a file's digest or size differs from the manifest or the pin.
        ModelLoadError: anything else that makes the model unfit to serve.
    """
    source = Path(directory)
    _check_permissions(source)
    manifest_bytes = _read_manifest_bytes(source)
    manifest = _parse_manifest(manifest_bytes, source / MANIFEST_FILE)
    artifact = manifest.get("artifact")
    if not isinstance(artifact, dict) or not {"sha256", "size"} <= artifact.keys():
        raise ModelLoadError(f"{source / MANIFEST_FILE}: no artifact sha256/size recorded")
    model_path = source / MODEL_FILE
    try:
        # One open file for hashing and unpickling: a file swapped in between is not read.
        stream = model_path.open("rb")
    except FileNotFoundError:
        raise ModelLoadError(f"{model_path}: no such file") from None
    except OSError as exc:
        raise ModelLoadError(f"{model_path}: cannot be opened ({exc.strerror})") from None
    with stream:
        size = os.fstat(stream.fileno()).st_size
        if size != artifact["size"]:
            raise ModelIntegrityError(
                f"{model_path}: size {size} bytes differs from the manifest's {artifact['size']}"
            )
        sha = _stream_sha256(stream)
        if sha != artifact["sha256"]:
            raise ModelIntegrityError(
                f"{model_path}: sha256 {sha} differs from the manifest's {artifact['sha256']};"
                " the file is corrupt or was modified after it was saved"
            )
        found = _directory_digest(
            {MANIFEST_FILE: hashlib.sha256(manifest_bytes).hexdigest(), MODEL_FILE: sha}
        )
        if digest is not None and found != digest:
            raise ModelIntegrityError(
                f"{source}: model digest {found} differs from the pinned {digest}; the"
                " directory holds another model, or its manifest was edited"
            )
        saved_with = (manifest.get("versions") or {}).get("scikit-learn")
        mismatch = saved_with != sklearn.__version__
        if mismatch:
            message = (
                f"{model_path} was saved with scikit-learn {saved_with} but"
                f" {sklearn.__version__} is installed"
            )
            if not allow_version_mismatch:
                raise ModelLoadError(
                    f"{message}; retrain, install scikit-learn {saved_with}, or load it anyway"
                    " with allow_version_mismatch=True (CLI: --allow-version-mismatch), which"
                    " still checks its golden pairs"
                )
            warnings.warn(
                f"{message}; loading anyway because the mismatch is allowed, if the golden"
                " pairs reproduce",
                ModelVersionWarning,
                stacklevel=2,
            )
        stream.seek(0)
        estimator = _unpickle(stream, model_path, strict=not mismatch)
    feature_names = manifest.get("feature_names") or []
    classes = manifest.get("classes") or []
    _check_schema(estimator, feature_names, classes, model_path)
    schema = _schema(manifest, feature_names, source / MANIFEST_FILE)
    try:
        model = IrisModel(
            estimator,
            feature_names=feature_names,
            classes=classes,
            metadata=manifest,
            max_rows=max_rows,
            version=manifest.get("model_version"),
            schema=schema,
        )
    except IrisModelError as exc:
        raise ModelLoadError(f"{model_path}: {exc}") from None
    model.digest = found
    model.self_test()
    return model


def model_digest(directory: str | os.PathLike[str]) -> str:
    """The digest of a saved model directory: ``sha256:<hex>`` over every file load() reads.

    It covers the manifest (labels, feature names, versions, golden pairs) as well as the
    model file, so a deployment can pin it beside the image digest, and ``load(directory,
    digest=...)`` refuses anything else. Reads the files; unpickles nothing.
    """
    source = Path(directory)
    return _directory_digest(
        {
            MANIFEST_FILE: hashlib.sha256(_read_manifest_bytes(source)).hexdigest(),
            MODEL_FILE: file_sha256(source / MODEL_FILE),
        }
    )


def read_manifest(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the parsed ``model.json`` of a saved model, without touching the model file."""
    path = Path(directory) / MANIFEST_FILE
    return _parse_manifest(_read_manifest_bytes(Path(directory)), path)


def _read_manifest_bytes(directory: Path) -> bytes:
    path = directory / MANIFEST_FILE
    try:
        with path.open("rb") as stream:
            data = stream.read(_MAX_MANIFEST_BYTES + 1)
    except FileNotFoundError:
        raise ModelLoadError(
            f"{path}: no such file; is this a directory saved by save()?"
        ) from None
    except OSError as exc:
        raise ModelLoadError(f"{path}: unreadable manifest ({exc.strerror})") from None
    if len(data) > _MAX_MANIFEST_BYTES:
        raise ModelLoadError(f"{path}: larger than {_MAX_MANIFEST_BYTES} bytes")
    return data


def _schema(manifest: dict[str, Any], feature_names: list[str], path: Path) -> Schema:
    """The manifest's schema; a manifest written before schemas: numbers named as its features."""
    try:
        if manifest.get("schema") is None:
            return Schema.numeric(feature_names)
        schema = Schema.from_dict(manifest["schema"])
    except SchemaError as exc:
        raise ModelLoadError(f"{path}: {exc}") from None
    if list(schema.names) != list(feature_names):
        raise ModelLoadError(
            f"{path}: the schema's columns differ from feature_names; the manifest was edited"
        )
    return schema


def _refuse_constant(name: str) -> Any:
    # JSON has no NaN or Infinity; Python's parser takes them unless told otherwise.
    raise ValueError(f"{name} is not JSON")


def _parse_manifest(data: bytes, path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ModelLoadError(f"{path}: unreadable manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise ModelLoadError(f"{path}: not a model manifest of format {MANIFEST_FORMAT}")
    version = manifest.get("model_version")
    if version is not None and not isinstance(version, str):
        raise ModelLoadError(f"{path}: model_version must be a string, got {version!r}")
    return manifest


def _directory_digest(file_digests: dict[str, str]) -> str:
    # Names are hashed too, so the same bytes under swapped names give another digest.
    combined = hashlib.sha256()
    for name in sorted(file_digests):
        combined.update(f"{name}\0{file_digests[name]}\n".encode())
    return f"sha256:{combined.hexdigest()}"


def _check_permissions(directory: Path) -> None:
    """Refuse a model that any local user could replace; warn if the group could.

    The model files must resolve inside the model directory (a symlink out of it would put
    the model's safety in another directory's hands; a Kubernetes volume's ``..data`` links
    stay inside). Then the files, the directory and every directory above it up to the
    root, resolved: one writable by every user is refused, one writable by its group warned
    about. A world-writable parent with the sticky bit (``/tmp``) is tolerated when the
    entry in it that leads to the model is owned by this user or root: the sticky bit lets
    only that owner rename or remove it, so others cannot swap the path underneath.
    """
    try:
        resolved = directory.resolve(strict=True)
    except OSError:
        return  # a missing directory is reported by the step that needs it
    files = []
    for name in (MANIFEST_FILE, MODEL_FILE):
        real = (directory / name).resolve()
        if not real.is_relative_to(resolved):
            raise ModelLoadError(
                f"{directory / name} is a symlink to {real}, outside the model directory;"
                " copy the file into the directory instead"
            )
        files.append(real)
    chain = [resolved, *resolved.parents]
    for path in files:
        _check_mode(path, os.stat(path).st_mode if path.exists() else 0)
    for child, path in zip([None, *chain], chain, strict=False):
        try:
            info = path.stat()
        except OSError:
            continue
        mode = info.st_mode
        if child is not None and mode & stat.S_IWOTH and mode & stat.S_ISVTX:
            owner = child.stat().st_uid
            if owner in (os.geteuid(), 0):
                continue  # /tmp and its kind: only the owner may rename the entry
        _check_mode(path, mode)


def _check_mode(path: Path, mode: int) -> None:
    try:
        # A read-only mount (a Kubernetes ConfigMap or PVC mounted readOnly, whose
        # directory is 0777) lets nobody write, whatever the mode bits say.
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return
    except OSError:
        return  # a missing file is reported by the step that needs it
    if mode & stat.S_IWOTH:
        raise ModelLoadError(
            f"{path} is writable by every user (mode {stat.filemode(mode)}); anyone on the"
            " host could swap the model: remove the write bit for others (chmod o-w)"
        )
    if mode & stat.S_IWGRP:
        _log.warning(
            "%s is group-writable (mode %s): members of its group could swap the model",
            path,
            stat.filemode(mode),
        )


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    with path.open("rb") as stream:
        return _stream_sha256(stream)


def _stream_sha256(stream: BinaryIO) -> str:
    digest = hashlib.sha256()
    while chunk := stream.read(_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def _unpickle(stream: BinaryIO, path: Path, *, strict: bool = True) -> Any:
    with warnings.catch_warnings():
        # Allowed across versions, scikit-learn's own warning is left to the caller's filters.
        if strict:
            warnings.simplefilter("error", InconsistentVersionWarning)
        try:
            return restricted_load(stream, str(path))
        except InconsistentVersionWarning as exc:
            raise ModelLoadError(f"{path}: {exc}") from None
        except ForbiddenGlobalError as exc:
            raise ModelLoadError(f"{path}: refused, {exc}") from None
        except Exception as exc:  # unpickling can fail in any way; none of it is servable
            raise ModelLoadError(f"{path}: cannot be unpickled ({type(exc).__name__})") from exc


def _check_schema(estimator: Any, feature_names: list[str], classes: list[str], path: Path) -> None:
    """Cross-check the manifest's features and classes against the unpickled estimator."""
    if not (hasattr(estimator, "predict") and hasattr(estimator, "predict_proba")):
        raise ModelLoadError(
            f"{path}: {type(estimator).__name__} is not a probabilistic classifier"
        )
    n_in = getattr(estimator, "n_features_in_", None)
    own_classes = list(getattr(estimator, "classes_", ()))
    if n_in != len(feature_names) or len(own_classes) != len(classes) or not classes:
        raise ModelLoadError(
            f"{path}: the estimator takes {n_in} features and has {len(own_classes)} classes,"
            f" but the manifest names {len(feature_names)} features and {len(classes)} classes"
        )
    # An estimator fitted on a DataFrame knows its columns; one fitted on string labels
    # knows them. Either must match the manifest, in order.
    own_names = getattr(estimator, "feature_names_in_", None)
    if own_names is not None and [str(n) for n in own_names] != list(feature_names):
        raise ModelLoadError(
            f"{path}: the manifest's feature names differ from the estimator's"
            f" feature_names_in_ ({len(own_names)} columns)"
        )
    if all(isinstance(c, str) for c in own_classes) and own_classes != list(classes):
        raise ModelLoadError(f"{path}: the manifest's classes differ from the estimator's classes_")
