"""What each ``iris-model`` command does, given its parsed arguments (see ``__main__``)."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from iris_model.errors import InvalidInputError
from iris_model.model import IrisModel, infer_schema
from iris_model.persistence import (
    MANIFEST_FILE,
    MODEL_FILE,
    load,
    model_digest,
    read_manifest,
    save,
)
from iris_model.pipelines import ESTIMATORS, default_pipeline
from iris_model.schema import Schema, SchemaError
from iris_model.tables import (
    TableError,
    cell_value,
    infer_columns,
    name,
    read_csv,
    read_json_lines,
    typed_rows,
)
from iris_model.training import train
from iris_model.validation import match_columns

EXIT_OK, EXIT_MODEL, EXIT_USAGE, EXIT_DATA, EXIT_EXISTS = 0, 1, 2, 3, 4
EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_MODEL: "model error: cannot train, save, load or verify the model",
    EXIT_USAGE: "usage error: bad or missing options (argparse)",
    EXIT_DATA: "data error: unreadable file, malformed CSV, invalid rows or labels",
    EXIT_EXISTS: "the output directory already holds a model (pass --force to replace it)",
}


class CliError(Exception):
    """An error reported on one line with a given exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------------------- train
def train_command(args: argparse.Namespace) -> int:
    """Train on Iris or ``--data``, evaluate, save to ``--output`` and print the evaluation."""
    output = Path(args.output)
    if output.exists() and not output.is_dir():
        raise CliError(f"{output} exists and is not a directory", EXIT_MODEL)
    holds_model = any((output / file).exists() for file in (MODEL_FILE, MANIFEST_FILE))
    if holds_model and not args.force:
        raise CliError(f"{output} already holds a model; pass --force to replace it", EXIT_EXISTS)
    params = _params(args)
    settings = {
        "seed": args.seed, "test_size": args.test_size, "cv_folds": args.cv_folds,
        "refit_full": args.refit_full,
    }  # fmt: skip
    if args.data is None:
        if args.target is not None:
            raise CliError("--target needs --data", EXIT_USAGE)
        estimator = None if args.estimator == "logistic" else ESTIMATORS[args.estimator](args.seed)
        result = train(estimator=estimator, **settings, **params)
    else:
        if args.target is None:
            raise CliError("--data needs --target COLUMN (the labels)", EXIT_USAGE)
        rows, labels, names = _read_training_data(args.data, args.target)
        try:
            schema = infer_schema(rows, names)
        except SchemaError as exc:
            raise CliError(f"{name(args.data)}: {exc}", EXIT_DATA) from None
        pipeline = default_pipeline(schema, args.estimator, args.seed)
        step = pipeline.steps[-1][0]  # hyperparameters are the classifier's
        params = {f"{step}__{key}": value for key, value in params.items()}
        result = train(rows, labels, estimator=pipeline, feature_names=names, **settings, **params)
    model, evaluation = result
    directory = save(model, output, version=args.model_version)
    if args.json:
        print(json.dumps({"directory": str(directory), "sha256": model.sha256,
                          "model_version": model.version,
                          "evaluation": evaluation.as_dict()}, indent=2))  # fmt: skip
    else:
        print(evaluation)
        print(f"saved {directory / MODEL_FILE} (sha256 {model.sha256}) and {MANIFEST_FILE}")
    return EXIT_OK


def _params(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if args.C is not None:
        params["C"] = args.C
    if args.max_iter is not None:
        params["max_iter"] = args.max_iter
    for item in args.param:
        key, sep, text = item.partition("=")
        if not sep or not key.isidentifier():
            raise CliError(f"--param expects NAME=VALUE, got {item!r}", EXIT_USAGE)
        try:
            params[key] = json.loads(text)
        except json.JSONDecodeError:
            params[key] = text
    return params


def _read_training_data(path: str, target: str) -> tuple[Any, list[Any], list[str] | None]:
    """The CSV's feature columns (a DataFrame when pandas is there), labels and names.

    The names are None for a DataFrame (its columns name themselves).
    """
    header, records = read_csv(path)
    if target not in header:
        raise CliError(f"{path}: no column {target!r} (columns: {', '.join(header)})", EXIT_DATA)
    columns = infer_columns(header, records)
    labels = columns.pop(target)
    if any(label is None for label in labels):
        raise CliError(f"{path}: column {target!r} has empty labels", EXIT_DATA)
    try:
        import pandas  # type: ignore[import-untyped]  # noqa: PLC0415 - optional
    except ImportError:  # pragma: no cover - the test environment has pandas
        values = list(zip(*columns.values(), strict=True))
        if all(isinstance(v, int | float) and not isinstance(v, bool) for r in values for v in r):
            return [list(row) for row in values], labels, list(columns)
        raise CliError(
            f"{path}: text columns or missing values need pandas: pip install pandas", EXIT_DATA
        ) from None
    return pandas.DataFrame(columns), labels, None


# -------------------------------------------------------------------------- predict
def predict_command(args: argparse.Namespace) -> int:
    """Predict one row (argv) or every row of ``--input`` (CSV or JSON lines)."""
    if args.input is not None and args.features:
        raise CliError("give either feature values or --input, not both", EXIT_USAGE)
    if args.input is None and not args.features:
        raise CliError("give one row's feature values, or --input FILE.csv", EXIT_USAGE)
    model = load(args.model_dir, allow_version_mismatch=args.allow_version_mismatch)
    schema = _schema(model)
    if args.input is not None:
        return _predict_file(model, schema, args)
    if len(args.features) != len(schema):
        raise CliError(
            f"expected {len(schema)} values ({', '.join(schema.names)}), got {len(args.features)}",
            EXIT_USAGE,
        )
    try:
        row = {
            column.name: cell_value("argv", None, column, text)
            for column, text in zip(schema, args.features, strict=True)
        }
    except TableError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    indices, probabilities = model.classify(row, probabilities=args.proba)
    index = int(indices[0])
    result: dict[str, Any] = {"prediction": index, "label": model.classes[index]}
    if probabilities is not None:
        result["probabilities"] = dict(zip(model.classes, probabilities[0].tolist(), strict=True))
    if args.json:
        print(json.dumps(result))
        return EXIT_OK
    print(f"{result['label']} (class {index})")
    for label, probability in result.get("probabilities", {}).items():
        print(f"  {label:<12} {probability:.4f}")
    return EXIT_OK


def _schema(model: IrisModel) -> Schema:
    assert model.schema is not None  # noqa: S101 - a loaded model has one
    return model.schema


def _predict_file(model: IrisModel, schema: Schema, args: argparse.Namespace) -> int:
    source = args.input
    json_lines = args.input_format == "jsonl" or (
        args.input_format is None and source.endswith((".jsonl", ".ndjson"))
    )
    if json_lines:
        numbered = read_json_lines(source)
        lines, rows = [line for line, _ in numbered], [row for _, row in numbered]
    else:
        header, records = read_csv(source)
        try:
            match_columns(header, schema.names, "file")
        except InvalidInputError as exc:
            raise CliError(f"{name(source)}: {exc}", EXIT_DATA) from None
        lines = [line for line, _ in records]
        rows = typed_rows(source, header, records, schema)
    if not rows:
        raise CliError(f"{name(source)}: no rows after the header", EXIT_DATA)
    out = sys.stdout
    for start in range(0, len(rows), model.max_rows):
        try:
            indices, probabilities = model.classify(
                rows[start : start + model.max_rows], probabilities=args.proba
            )
        except InvalidInputError as exc:
            raise CliError(
                f"{name(source)} (row 0 is line {lines[start]}): {exc}", EXIT_DATA
            ) from None
        _write(out, model, indices, probabilities, args.format, header_row=start == 0)
    return EXIT_OK


def _write(
    out: TextIO, model: Any, indices: Any, probabilities: Any, form: str, *, header_row: bool
) -> None:
    classes = model.classes
    if form == "jsonl":
        for k, index in enumerate(indices.tolist()):
            record: dict[str, Any] = {"prediction": index, "label": classes[index]}
            if probabilities is not None:
                record["probabilities"] = dict(zip(classes, probabilities[k].tolist(), strict=True))
            out.write(json.dumps(record) + "\n")
        return
    writer = csv.writer(out, lineterminator="\n")
    if header_row:
        extra = [f"p_{label}" for label in classes] if probabilities is not None else []
        writer.writerow(["prediction", "label", *extra])
    for k, index in enumerate(indices.tolist()):
        extra = [repr(p) for p in probabilities[k].tolist()] if probabilities is not None else []
        writer.writerow([index, classes[index], *extra])


# --------------------------------------------------------------------- info, verify
def info_command(args: argparse.Namespace) -> int:
    """Print a saved model's manifest, schema included (nothing is unpickled)."""
    manifest = read_manifest(args.model_dir)
    if args.json:
        print(json.dumps({**manifest, "digest": model_digest(args.model_dir)}, indent=2,
                         sort_keys=True))  # fmt: skip
        return EXIT_OK
    artifact, versions = manifest.get("artifact", {}), manifest.get("versions", {})
    metrics = manifest.get("metrics") or {}
    print(f"estimator     {manifest.get('estimator')}  {manifest.get('params', '')}")
    print(f"model version {manifest.get('model_version') or '(none)'}")
    print(f"classes       {', '.join(manifest.get('classes', []))}")
    scorer = manifest.get("scorer") or {}
    if scorer:
        reason = scorer.get("reason")
        shown = f"  ({reason})" if reason and reason != "compiled" else ""
        print(f"scorer        {scorer.get('kind')}{shown}")
    try:
        schema = Schema.from_dict(manifest["schema"]) if manifest.get("schema") else None
    except SchemaError as exc:
        raise CliError(f"{args.model_dir}: {exc}", EXIT_MODEL) from None
    if schema is None:
        schema = Schema.numeric(manifest.get("feature_names", []) or ["?"])
    print("columns       " + "\n              ".join(str(column) for column in schema))
    print(f"sha256        {artifact.get('sha256')}  ({artifact.get('size')} bytes)")
    print(f"digest        {model_digest(args.model_dir)}  (model directory; pin it)")
    print(f"created       {manifest.get('created_at')}")
    print("versions      " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    if metrics:
        print(
            f"accuracy      {metrics.get('accuracy'):.3f}  macro F1 {metrics.get('macro_f1'):.3f}"
        )
    return EXIT_OK


def verify_command(args: argparse.Namespace) -> int:
    """Load the model with every check (digest, versions, schema, golden pairs)."""
    model = load(
        args.model_dir, allow_version_mismatch=args.allow_version_mismatch, digest=args.digest
    )
    print(f"ok: {args.model_dir} digest {model.digest}, scikit-learn "
          f"{model.metadata['versions']['scikit-learn']}, "
          f"{len(model.metadata['golden'])} golden pairs reproduced")  # fmt: skip
    return EXIT_OK
