"""App-only cost per request, in-process: the WSGI apps called directly, no socket, no Gunicorn.

    python bench/wsgi_micro.py [--env INFERENCE_LOG_REQUESTS=false] [--number 2000]

Loaded machines make wrk's requests/s swing; the CPU time of the best of several timed
repeats of a direct WSGI call much less, so this isolates what the server's own code adds
per request (parse, validate, predict, metrics, logging) over the constant-JSON ceiling app.
Same bodies as bench/run.py; metrics run in multiprocess mode as under Gunicorn; the
access log goes to /dev/null through the same logging handler.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import sys
import tempfile
import time
import timeit
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH / "apps"))


def environ_for(
    path: str, body: bytes, headers: dict[str, str] | None = None
) -> Callable[[], dict[str, Any]]:
    """A fresh WSGI environ for a POST (JSON unless ``headers`` say otherwise), as Gunicorn's."""
    base = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "5000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": "127.0.0.1:5000",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        base[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = value

    def make() -> dict[str, Any]:
        environ = dict(base)
        environ["wsgi.input"] = io.BytesIO(body)
        return environ

    return make


def call(app: Any, make_environ: Callable[[], dict[str, Any]]) -> int:
    """One request through the WSGI app; returns the status code."""
    status: list[str] = []

    def start_response(s: str, _headers: Any, _exc: Any = None) -> Any:
        status.append(s)
        return lambda _data: None

    for _chunk in app(make_environ(), start_response):
        pass
    return int(status[0].split()[0])


def main(argv: Sequence[str] | None = None) -> int:
    """Time every workload on the server app and the ceiling app; print µs per request."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--number", type=int, default=2000, help="calls per timed repeat")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="bench-micro-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(scratch / "prometheus")
    (scratch / "prometheus").mkdir()
    os.environ.update(dict(item.split("=", 1) for item in args.env))

    import run  # noqa: PLC0415

    import iris_model  # noqa: PLC0415

    model_dir = scratch / "model"
    iris_model.save(iris_model.train(seed=42).model, model_dir)
    os.environ["INFERENCE_MODEL_DIR"] = str(model_dir)
    devnull = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    real_stdout, sys.stdout = sys.stdout, devnull  # the access log's StreamHandler binds it
    from inference_server import create_app  # noqa: PLC0415

    server = create_app()
    import ceiling  # noqa: PLC0415

    sys.stdout = real_stdout
    results: dict[str, dict[str, float]] = {}
    number = args.number
    for workload in run.make_workloads().values():
        n = max(number // workload.rows * 4, 50) if workload.rows > 1 else number
        row: dict[str, float] = {}
        for name, app in (("server", server), ("ceiling", ceiling.app)):
            if name == "server":
                make = environ_for(workload.path, workload.body, workload.headers)
            else:  # the ceiling answers the same constant on /predict, whatever was sent
                make = environ_for("/predict", workload.body, workload.headers)
            assert call(app, make) == 200  # noqa: S101 - a failing app would time nothing
            # CPU time of this process, not wall time: time spent descheduled by other
            # jobs on a shared machine does not count.
            best = min(
                timeit.repeat(
                    functools.partial(call, app, make),
                    number=n,
                    repeat=args.repeat,
                    timer=time.process_time,
                )
            )
            row[name] = round(best / n * 1e6, 1)
        row["overhead"] = round(row["server"] - row["ceiling"], 1)
        results[workload.key] = row
        print(
            f"{workload.key:8} server {row['server']:8.1f} µs  ceiling {row['ceiling']:7.1f} µs"
            f"  server code adds {row['overhead']:8.1f} µs per request",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
