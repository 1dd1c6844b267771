"""Command-line interface: ``iris-model train|predict|info|verify`` (or ``python -m iris_model``).

Every error is one line on stderr (``iris-model: error: ...``) and one of the exit codes in
:data:`EXIT_CODES`, never a traceback. CSV files are read with the standard library: the
command line needs no pandas.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from iris_model import __version__
from iris_model.errors import InvalidInputError, IrisModelError, TrainingError
from iris_model.persistence import MANIFEST_FILE, MODEL_FILE, load, read_manifest, save
from iris_model.training import DEFAULT_CV_FOLDS, DEFAULT_SEED, DEFAULT_TEST_SIZE, train

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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    args = _parser().parse_args(argv)
    with warnings.catch_warnings():
        # A warning (say, an allowed version mismatch) is one line too, not a source dump.
        warnings.simplefilter("always")
        warnings.showwarning = _show_warning
        try:
            result: int = args.handler(args)
        except CliError as exc:
            return _fail(str(exc), exc.code)
        except (InvalidInputError, TrainingError) as exc:
            return _fail(str(exc), EXIT_DATA)
        except IrisModelError as exc:
            return _fail(str(exc), EXIT_MODEL)
        except OSError as exc:
            return _fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "), EXIT_DATA)
    return result


def _fail(message: str, code: int) -> int:
    print(f"iris-model: error: {' '.join(message.split())}", file=sys.stderr)
    return code


def _show_warning(message: Any, category: Any, *_: Any, **__: Any) -> None:
    print(f"iris-model: warning: {' '.join(str(message).split())}", file=sys.stderr)


def _epilog() -> str:
    codes = "\n".join(f"  {code}  {meaning}" for code, meaning in EXIT_CODES.items())
    return (
        f"exit codes:\n{codes}\n\n"
        "Model files are pickles: only load directories from sources you trust."
    )


def _parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="iris-model",
        description="Train, inspect, verify and query scikit-learn classifiers (Iris by default).",
        epilog=_epilog(),
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    cmd = commands.add_parser(
        "train",
        help="train, evaluate and save a model",
        epilog=_epilog(),
        formatter_class=formatter,
    )
    cmd.add_argument("--output", "-o", required=True, metavar="DIR", help="directory to save to")
    cmd.add_argument(
        "--data", metavar="FILE.csv", help="your data: a CSV file with a header row (default: Iris)"
    )
    cmd.add_argument(
        "--target", metavar="COLUMN", help="the CSV column holding the labels (needed with --data)"
    )
    cmd.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help="random seed (default: %(default)s)"
    )
    cmd.add_argument(
        "--test-size",
        type=float,
        default=DEFAULT_TEST_SIZE,
        help="held-out fraction in (0, 1) (default: %(default)s)",
    )
    cmd.add_argument(
        "--cv-folds",
        type=int,
        default=DEFAULT_CV_FOLDS,
        help="cross-validation folds, 0 for none (default: %(default)s)",
    )
    cmd.add_argument(
        "--C", type=float, dest="C", help="inverse regularisation strength (default: 1.0)"
    )
    cmd.add_argument("--max-iter", type=int, help="solver iteration limit (default: 1000)")
    cmd.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="another LogisticRegression hyperparameter (VALUE as JSON, else text); repeatable",
    )
    cmd.add_argument(
        "--refit-full", action="store_true", help="after evaluating, refit on all rows"
    )
    cmd.add_argument(
        "--model-version", metavar="V", help="the model's own version, recorded in the manifest"
    )
    cmd.add_argument("--force", action="store_true", help="replace a model already in DIR")
    cmd.add_argument("--json", action="store_true", help="print the evaluation as JSON")
    cmd.set_defaults(handler=_train)

    cmd = commands.add_parser(
        "predict",
        help="predict one flower (argv) or every row of a CSV file (--input)",
        epilog=_epilog(),
        formatter_class=formatter,
    )
    cmd.add_argument("model_dir", metavar="DIR", help="directory of a saved model")
    cmd.add_argument(
        "features",
        nargs="*",
        type=_finite_float,
        metavar="X",
        help="one row's values, in the model's feature order",
    )
    cmd.add_argument(
        "--input",
        "-i",
        metavar="FILE.csv",
        help="CSV with a header naming the model's features; - for stdin",
    )
    cmd.add_argument(
        "--format",
        choices=("csv", "jsonl"),
        default="csv",
        help="output for --input: CSV or JSON lines (default: %(default)s)",
    )
    cmd.add_argument("--proba", action="store_true", help="also print class probabilities")
    cmd.add_argument("--json", action="store_true", help="print one row's result as JSON")
    cmd.add_argument(
        "--allow-version-mismatch",
        action="store_true",
        help="load a model saved with another scikit-learn (its golden pairs still decide)",
    )
    cmd.set_defaults(handler=_predict)

    cmd = commands.add_parser("info", help="show a saved model's manifest (does not unpickle)")
    cmd.add_argument("model_dir", metavar="DIR", help="directory of a saved model")
    cmd.add_argument("--json", action="store_true", help="print the whole manifest as JSON")
    cmd.set_defaults(handler=_info)

    cmd = commands.add_parser("verify", help="check digest, versions and golden predictions")
    cmd.add_argument("model_dir", metavar="DIR", help="directory of a saved model")
    cmd.add_argument(
        "--allow-version-mismatch",
        action="store_true",
        help="accept another scikit-learn version if the golden pairs reproduce",
    )
    cmd.set_defaults(handler=_verify)
    return parser  # fmt: skip


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


# ---------------------------------------------------------------------------- train
def _train(args: argparse.Namespace) -> int:
    output = Path(args.output)
    if output.exists() and not output.is_dir():
        raise CliError(f"{output} exists and is not a directory", EXIT_MODEL)
    holds_model = any((output / name).exists() for name in (MODEL_FILE, MANIFEST_FILE))
    if holds_model and not args.force:
        raise CliError(f"{output} already holds a model; pass --force to replace it", EXIT_EXISTS)
    params = _params(args)
    if args.data is None:
        if args.target is not None:
            raise CliError("--target needs --data", EXIT_USAGE)
        result = train(
            seed=args.seed, test_size=args.test_size, cv_folds=args.cv_folds,
            refit_full=args.refit_full, **params,
        )  # fmt: skip
    else:
        if args.target is None:
            raise CliError("--data needs --target COLUMN (the labels)", EXIT_USAGE)
        names, rows, labels = _read_training_csv(args.data, args.target)
        result = train(
            rows, labels, feature_names=names, seed=args.seed, test_size=args.test_size,
            cv_folds=args.cv_folds, refit_full=args.refit_full, **params,
        )  # fmt: skip
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
        name, sep, text = item.partition("=")
        if not sep or not name.isidentifier():
            raise CliError(f"--param expects NAME=VALUE, got {item!r}", EXIT_USAGE)
        try:
            params[name] = json.loads(text)
        except json.JSONDecodeError:
            params[name] = text
    return params


def _read_training_csv(path: str, target: str) -> tuple[list[str], list[list[float]], list[Any]]:
    header, records = _read_csv(path)
    if target not in header:
        raise CliError(f"{path}: no column {target!r} (columns: {', '.join(header)})", EXIT_DATA)
    at = header.index(target)
    names = [name for k, name in enumerate(header) if k != at]
    rows, labels = [], []
    for line, record in records:
        labels.append(record[at])
        rows.append([_cell(path, line, header[k], v) for k, v in enumerate(record) if k != at])
    if all(_is_int(label) for label in labels):  # numeric labels stay numbers
        return names, rows, [int(label) for label in labels]
    return names, rows, labels


def _is_int(text: str) -> bool:
    return text.strip().lstrip("-").isdigit()


# -------------------------------------------------------------------------- predict
def _predict(args: argparse.Namespace) -> int:
    if args.input is not None and args.features:
        raise CliError("give either feature values or --input, not both", EXIT_USAGE)
    if args.input is None and not args.features:
        raise CliError("give one row's feature values, or --input FILE.csv", EXIT_USAGE)
    model = load(args.model_dir, allow_version_mismatch=args.allow_version_mismatch)
    if args.input is not None:
        return _predict_csv(model, args)
    if len(args.features) != model.n_features:
        raise CliError(
            f"expected {model.n_features} values ({', '.join(model.feature_names)}),"
            f" got {len(args.features)}",
            EXIT_USAGE,
        )
    indices, probabilities = model.classify([args.features], probabilities=args.proba)
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


def _predict_csv(model: Any, args: argparse.Namespace) -> int:
    source = args.input
    header, records = _read_csv(source)
    missing = [name for name in model.feature_names if name not in header]
    unknown = [name for name in header if name not in model.feature_names]
    if missing or unknown:
        problems = [f"missing column {name!r}" for name in missing]
        problems += [f"unknown column {name!r}" for name in unknown]
        raise CliError(f"{_name(source)}: {'; '.join(problems)}", EXIT_DATA)
    order = [header.index(name) for name in model.feature_names]
    rows = [[_cell(source, line, header[k], record[k]) for k in order] for line, record in records]
    if not rows:
        raise CliError(f"{_name(source)}: no rows after the header", EXIT_DATA)
    out = sys.stdout
    for start in range(0, len(rows), model.max_rows):
        indices, probabilities = model.classify(
            rows[start : start + model.max_rows], probabilities=args.proba
        )
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
        extra = [f"p_{name}" for name in classes] if probabilities is not None else []
        writer.writerow(["prediction", "label", *extra])
    for k, index in enumerate(indices.tolist()):
        extra = [repr(p) for p in probabilities[k].tolist()] if probabilities is not None else []
        writer.writerow([index, classes[index], *extra])


# ------------------------------------------------------------------------------ CSV
def _read_csv(path: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Return the header and (line number, cells) of each record; refuse ragged rows."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CliError(f"{path}: no such file", EXIT_DATA) from None
    except IsADirectoryError:
        raise CliError(f"{path}: is a directory, not a CSV file", EXIT_DATA) from None
    except UnicodeDecodeError:
        raise CliError(f"{path}: not UTF-8 text", EXIT_DATA) from None
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader, None)
        if not header:
            raise CliError(f"{_name(path)}: empty file (expected a header row)", EXIT_DATA)
        header = [name.strip() for name in header]
        duplicates = sorted({name for name in header if header.count(name) > 1})
        if duplicates:
            raise CliError(f"{_name(path)}: duplicate column {duplicates[0]!r}", EXIT_DATA)
        return header, list(_records(path, reader, len(header)))
    except csv.Error as exc:
        raise CliError(
            f"{_name(path)} line {reader.line_num}: malformed CSV ({exc})", EXIT_DATA
        ) from None


def _records(path: str, reader: Any, width: int) -> Iterator[tuple[int, list[str]]]:
    for record in reader:
        if not record:
            continue  # blank lines
        if len(record) != width:
            raise CliError(
                f"{_name(path)} line {reader.line_num}: {len(record)} values for {width} columns",
                EXIT_DATA,
            )
        yield reader.line_num, record


def _cell(path: str, line: int, column: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        shown = text if len(text) <= 40 else text[:39] + "…"
        raise CliError(
            f"{_name(path)} line {line}, column {column!r}: not a number: {shown!r}", EXIT_DATA
        ) from None
    if not math.isfinite(value):
        raise CliError(
            f"{_name(path)} line {line}, column {column!r}: not a finite number: {text!r}",
            EXIT_DATA,
        )
    return value


def _name(path: str) -> str:
    return "stdin" if path == "-" else path


# --------------------------------------------------------------------- info, verify
def _info(args: argparse.Namespace) -> int:
    manifest = read_manifest(args.model_dir)
    if args.json:
        print(json.dumps(manifest, indent=2, sort_keys=True))
        return EXIT_OK
    artifact, versions = manifest.get("artifact", {}), manifest.get("versions", {})
    metrics = manifest.get("metrics") or {}
    print(f"estimator     {manifest.get('estimator')}  {manifest.get('params', '')}")
    print(f"model version {manifest.get('model_version') or '(none)'}")
    print(f"classes       {', '.join(manifest.get('classes', []))}")
    print(f"features      {', '.join(manifest.get('feature_names', []))}")
    print(f"sha256        {artifact.get('sha256')}  ({artifact.get('size')} bytes)")
    print(f"created       {manifest.get('created_at')}")
    print("versions      " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    if metrics:
        print(
            f"accuracy      {metrics.get('accuracy'):.3f}  macro F1 {metrics.get('macro_f1'):.3f}"
        )
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    model = load(args.model_dir, allow_version_mismatch=args.allow_version_mismatch)
    print(f"ok: {args.model_dir} sha256 {model.sha256}, scikit-learn "
          f"{model.metadata['versions']['scikit-learn']}, "
          f"{len(model.metadata['golden'])} golden pairs reproduced")  # fmt: skip
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
