"""Command-line interface: ``iris-model train|predict|info|verify`` (or ``python -m iris_model``).

Exit codes: 0 success, 1 a domain error (message on stderr), 2 a usage error.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from typing import Any

from iris_model import __version__
from iris_model.errors import IrisModelError
from iris_model.persistence import (
    MANIFEST_FILE,
    MODEL_FILE,
    load,
    model_digest,
    read_manifest,
    save,
)
from iris_model.training import DEFAULT_SEED, train

EXIT_OK, EXIT_ERROR = 0, 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    args = _parser().parse_args(argv)
    try:
        result: int = args.handler(args)
    except IrisModelError as exc:
        print(f"iris-model: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="iris-model",
        description="Train, inspect, verify and query Iris LogisticRegression models.",
        epilog="Model files are pickles: only load directories from sources you trust.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    cmd = commands.add_parser("train", help="train, evaluate and save a model")
    cmd.add_argument("--output", "-o", required=True, metavar="DIR", help="directory to save to")
    cmd.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help="random seed (default: %(default)s)"
    )
    cmd.add_argument(
        "--test-size", type=float, default=0.2, help="held-out fraction (default: %(default)s)"
    )
    cmd.add_argument("--json", action="store_true", help="print the evaluation as JSON")
    cmd.set_defaults(handler=_train)

    cmd = commands.add_parser("predict", help="predict the class of one flower")
    cmd.add_argument("model_dir", metavar="DIR", help="directory of a saved model")
    cmd.add_argument(
        "features",
        nargs=4,
        type=_finite_float,
        metavar="X",
        help="sepal length, sepal width, petal length, petal width (cm)",
    )
    cmd.add_argument("--proba", action="store_true", help="also print class probabilities")
    cmd.add_argument("--json", action="store_true", help="print the result as JSON")
    cmd.set_defaults(handler=_predict)

    cmd = commands.add_parser("info", help="show a saved model's manifest (does not unpickle)")
    cmd.add_argument("model_dir", metavar="DIR", help="directory of a saved model")
    cmd.add_argument("--json", action="store_true", help="print the whole manifest as JSON")
    cmd.set_defaults(handler=_info)

    cmd = commands.add_parser("verify", help="check digest, versions and golden predictions")
    cmd.add_argument("model_dir", metavar="DIR", help="directory of a saved model")
    cmd.add_argument(
        "--digest",
        metavar="sha256:HEX",
        help="refuse the model unless its directory digest is this one",
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


def _train(args: argparse.Namespace) -> int:
    model, evaluation = train(seed=args.seed, test_size=args.test_size)
    directory = save(model, args.output)
    if args.json:
        print(json.dumps({"directory": str(directory), "sha256": model.sha256,
                          "evaluation": evaluation.as_dict()}, indent=2))  # fmt: skip
    else:
        print(evaluation)
        print(f"saved {directory / MODEL_FILE} (sha256 {model.sha256}) and {MANIFEST_FILE}")
    return EXIT_OK


def _predict(args: argparse.Namespace) -> int:
    model = load(args.model_dir)
    index = int(model.predict(args.features)[0])
    result: dict[str, Any] = {"prediction": index, "label": model.classes[index]}
    if args.proba:
        probabilities = model.predict_proba(args.features)[0].tolist()
        result["probabilities"] = dict(zip(model.classes, probabilities, strict=True))
    if args.json:
        print(json.dumps(result))
        return EXIT_OK
    print(f"{result['label']} (class {index})")
    for label, probability in result.get("probabilities", {}).items():
        print(f"  {label:<12} {probability:.4f}")
    return EXIT_OK


def _info(args: argparse.Namespace) -> int:
    manifest = read_manifest(args.model_dir)
    if args.json:
        print(json.dumps({**manifest, "digest": model_digest(args.model_dir)}, indent=2,
                         sort_keys=True))  # fmt: skip
        return EXIT_OK
    artifact, versions = manifest.get("artifact", {}), manifest.get("versions", {})
    metrics = manifest.get("metrics", {})
    print(f"estimator     {manifest.get('estimator')}  {manifest.get('params')}")
    print(f"classes       {', '.join(manifest.get('classes', []))}")
    print(f"features      {', '.join(manifest.get('feature_names', []))}")
    print(f"sha256        {artifact.get('sha256')}  ({artifact.get('size')} bytes)")
    print(f"digest        {model_digest(args.model_dir)}  (model directory; pin it)")
    print(f"created       {manifest.get('created_at')}")
    print("versions      " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    if metrics:
        print(
            f"accuracy      {metrics.get('accuracy'):.3f}  macro F1 {metrics.get('macro_f1'):.3f}"
        )
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    model = load(args.model_dir, digest=args.digest)
    print(f"ok: {args.model_dir} digest {model.digest}, scikit-learn "
          f"{model.metadata['versions']['scikit-learn']}, "
          f"{len(model.metadata['golden'])} golden pairs reproduced")  # fmt: skip
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
