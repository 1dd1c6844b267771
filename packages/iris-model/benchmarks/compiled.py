"""Time a typed pipeline: the compiled scorer vs the pipeline's own ``predict``.

Run: ``python packages/iris-model/benchmarks/compiled.py`` (needs pandas). The houses
pipeline of ``examples/tabular.ipynb`` (a ``ColumnTransformer`` of imputer + scaler for the
numbers, one-hot for the strings, passthrough for the flag, then a ``LogisticRegression``)
is trained once; each case times one row through ``IrisModel.predict`` (schema checks
included) against the fitted pipeline's own ``predict`` on the same one-row DataFrame, in
the same run, interleaved. Also the same model with compiling turned off (the pipeline
behind the schema checks: what the library served before issue 28). Target: >= 10x.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from timing import median_us  # beside this script: the one timing rule

import iris_model

HOUSES = Path(__file__).resolve().parents[1] / "examples" / "houses.csv"


def main() -> None:
    """Print a table of per-call times and ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7, help="timeit repeats (default: 7)")
    args = parser.parse_args()

    houses = pd.read_csv(HOUSES)
    x, y = houses.drop(columns="sale"), houses["sale"]
    pipeline = make_pipeline(
        ColumnTransformer(
            [
                (
                    "numbers",
                    make_pipeline(SimpleImputer(), StandardScaler()),
                    ["price", "area", "rooms"],
                ),
                ("text", OneHotEncoder(handle_unknown="ignore"), ["region", "kind"]),
                ("flags", "passthrough", ["garden"]),
            ]
        ),
        LogisticRegression(max_iter=1000),
    )
    model, _ = iris_model.train(x, y, estimator=pipeline)
    assert model.scorer_kind == "compiled", model.compiled_reason  # noqa: S101
    fitted = model.estimator
    # The same model served through the pipeline (as before issue 28): compiling refused.
    real = iris_model.model.compile_estimator
    iris_model.model.compile_estimator = lambda *a: (None, "benchmark reference")
    uncompiled = iris_model.IrisModel(fitted, schema=model.schema)
    iris_model.model.compile_estimator = real
    assert uncompiled.scorer_kind == "estimator"  # noqa: S101
    frame = x.iloc[[3]]
    row = {
        k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in frame.iloc[0].items()
    }
    same = np.allclose(model.predict_proba(row), fitted.predict_proba(frame), rtol=1e-9, atol=1e-9)
    cases = {
        "1 row dict, predict": lambda: model.predict(row),
        "1 row DataFrame, predict": lambda: model.predict(frame),
        "1 row dict, predict_proba": lambda: model.predict_proba(row),
        "1 row DataFrame, uncompiled": lambda: uncompiled.predict(frame),
    }
    reference = lambda: fitted.predict(frame)  # noqa: E731
    print(f"{'case':<30} {'iris_model µs':>14} {'pipeline µs':>12} {'speed-up':>9}")
    for name, fn in cases.items():
        ours, theirs = [], []
        for _ in range(args.repeat):  # interleaved rounds: load shifts both alike
            ours.append(median_us(fn, 200, 1))
            theirs.append(median_us(reference, 50, 1))
        ours_us, theirs_us = statistics.median(ours), statistics.median(theirs)
        print(f"{name:<30} {ours_us:14.1f} {theirs_us:12.1f} {theirs_us / ours_us:8.1f}x")
    print(
        "pipeline: the fitted Pipeline's own predict on the same one-row DataFrame;"
        f" same answer: {same}"
    )


if __name__ == "__main__":
    main()
