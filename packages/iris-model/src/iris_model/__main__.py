"""Command-line interface: ``iris-model train|predict|info|verify`` (or ``python -m iris_model``).

This module parses the arguments; :mod:`iris_model.commands` does the work. Every error is
one line on stderr (``iris-model: error: ...``) and one of the exit codes in
:data:`EXIT_CODES`, never a traceback. CSV files are read with the standard library;
training on text columns or missing values needs pandas.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from iris_model import __version__
from iris_model.commands import (
    EXIT_CODES,
    EXIT_DATA,
    EXIT_MODEL,
    CliError,
    info_command,
    predict_command,
    train_command,
    verify_command,
)
from iris_model.errors import InvalidInputError, IrisModelError, TrainingError
from iris_model.pipelines import ESTIMATORS
from iris_model.tables import TableError
from iris_model.training import DEFAULT_CV_FOLDS, DEFAULT_SEED, DEFAULT_TEST_SIZE

__all__ = ["EXIT_CODES", "main"]


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
        except (InvalidInputError, TrainingError, TableError) as exc:
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
        "--estimator",
        choices=tuple(ESTIMATORS),
        default="logistic",
        help="the classifier; with --data it follows a pipeline that scales numbers, one-hot"
        " encodes text and imputes missing values (default: %(default)s)",
    )
    cmd.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="another hyperparameter of the classifier (VALUE as JSON, else text); repeatable",
    )
    cmd.add_argument(
        "--refit-full", action="store_true", help="after evaluating, refit on all rows"
    )
    cmd.add_argument(
        "--model-version", metavar="V", help="the model's own version, recorded in the manifest"
    )
    cmd.add_argument("--force", action="store_true", help="replace a model already in DIR")
    cmd.add_argument("--json", action="store_true", help="print the evaluation as JSON")
    cmd.set_defaults(handler=train_command)

    cmd = commands.add_parser(
        "predict",
        help="predict one row (argv) or every row of a CSV or JSON lines file (--input)",
        epilog=_epilog(),
        formatter_class=formatter,
    )
    cmd.add_argument("model_dir", metavar="DIR", help="directory of a saved model")
    cmd.add_argument(
        "features",
        nargs="*",
        metavar="X",
        help="one row's values, in the model's feature order",
    )
    cmd.add_argument(
        "--input",
        "-i",
        metavar="FILE",
        help="CSV with a header naming the model's features, or JSON lines (one object per"
        " row; by a .jsonl suffix or --input-format); - for stdin",
    )
    cmd.add_argument(
        "--input-format",
        choices=("csv", "jsonl"),
        help="how to read --input (default: by its suffix, else CSV)",
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
    cmd.set_defaults(handler=predict_command)

    cmd = commands.add_parser(
        "info", help="show a saved model's manifest and schema (does not unpickle)"
    )
    cmd.add_argument("model_dir", metavar="DIR", help="directory of a saved model")
    cmd.add_argument("--json", action="store_true", help="print the whole manifest as JSON")
    cmd.set_defaults(handler=info_command)

    cmd = commands.add_parser("verify", help="check digest, versions and golden predictions")
    cmd.add_argument("model_dir", metavar="DIR", help="directory of a saved model")
    cmd.add_argument(
        "--allow-version-mismatch",
        action="store_true",
        help="accept another scikit-learn version if the golden pairs reproduce",
    )
    cmd.add_argument(
        "--digest",
        metavar="sha256:HEX",
        help="refuse the model unless its directory digest is this one",
    )
    cmd.set_defaults(handler=verify_command)
    return parser  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
