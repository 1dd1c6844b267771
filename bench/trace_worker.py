"""Why requests wait: per-request timestamps from inside each worker of the shipped server.

    python bench/trace_worker.py --seconds 8
    python bench/trace_worker.py --env TRACE_WORKER_CLASS=gevent   # Gunicorn's stock worker

The shipped app runs under the shipped Gunicorn configuration, wrapped in a recorder
(trace/trace_app.py) that keeps per request the client port (one keep-alive connection),
when the app was entered and when it returned, plus every garbage collection; each worker
dumps them at exit (trace/trace_conf.py). wrk drives single-row /predict (bounded). Printed
per worker: requests and connections, how many requests one connection got back to back
(runs), time from one answer to the same connection's next request, gaps where the worker
served nothing, and GC pauses.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import run_wrk
from servers import BENCH, Server, clean_env, free_port, loadavg, prepare
from workloads import make_workloads


def quantile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank quantile of an ascending list (0.0 when empty)."""
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def describe(trace: dict[str, Any]) -> list[str]:
    """The figures of one worker's trace."""
    requests = sorted(trace["requests"], key=lambda r: r[1])
    if not requests:
        return [f"worker {trace['pid']}: no requests"]
    per_port: dict[int, int] = {}
    for port, _, _ in requests:
        per_port[port] = per_port.get(port, 0) + 1
    runs, current = [], 1
    for before, after in itertools.pairwise(requests):
        if before[0] == after[0]:
            current += 1
        else:
            runs.append(current)
            current = 1
    runs = sorted([*runs, current])
    last: dict[int, int] = {}
    turnaround = []
    for port, entered, left in requests:
        if port in last:
            turnaround.append((entered - last[port]) / 1e6)
        last[port] = left
    turnaround.sort()
    gaps = sorted((after[1] - before[2]) / 1e6 for before, after in itertools.pairwise(requests))
    in_app = sorted((left - entered) / 1e3 for _, entered, left in requests)
    pauses, started = [], None
    for phase, generation, stamp in trace["gc"]:
        if phase == "start":
            started = (generation, stamp)
        elif started is not None:
            pauses.append((started[0], (stamp - started[1]) / 1e6))
    return [
        f"worker {trace['pid']}: {len(requests)} requests on {len(per_port)} connections "
        f"(requests per connection {sorted(per_port.values())})",
        f"  one connection back to back: median {quantile(runs, 0.5):.0f}, p99 "
        f"{quantile(runs, 0.99):.0f}, max {runs[-1]} (mean {statistics.mean(runs):.2f})",
        f"  in the app: p50 {quantile(in_app, 0.5):.0f} µs, p99 {quantile(in_app, 0.99):.0f} µs",
        f"  answer -> same connection's next request: p50 {quantile(turnaround, 0.5):.2f} ms, "
        f"p90 {quantile(turnaround, 0.9):.2f} ms, p99 {quantile(turnaround, 0.99):.2f} ms, "
        f"max {turnaround[-1] if turnaround else 0:.2f} ms",
        f"  worker idle between requests: p50 {quantile(gaps, 0.5):.3f} ms, p99 "
        f"{quantile(gaps, 0.99):.2f} ms; {sum(g > 5 for g in gaps)} gaps > 5 ms",
        f"  GC: {len(pauses)} collections, longest {max([p for _, p in pauses] or [0]):.2f} ms,"
        f" {sum(g == 2 for g, _ in pauses)} of generation 2",
    ]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--start-timeout", type=float, default=120.0)
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Trace one load; print the figures per worker."""
    args = parse_args(argv)
    workload = make_workloads()["predict"]
    extra_env = dict(item.split("=", 1) for item in args.env)
    with tempfile.TemporaryDirectory(prefix="bench-trace-") as tmp:
        scratch = Path(tmp)
        setup = prepare(scratch, {workload.key: workload}, extra_env)
        if setup.model_dir is None:
            return 2
        port = free_port()
        (scratch / "prometheus").mkdir()
        (scratch / "traces").mkdir()
        env = clean_env(
            extra_env
            | {
                "INFERENCE_BIND": f"127.0.0.1:{port}",
                "INFERENCE_MODEL_DIR": str(setup.model_dir),
                "PROMETHEUS_MULTIPROC_DIR": str(scratch / "prometheus"),
                "PYTHONPATH": str(BENCH / "trace"),
                "TRACE_DIR": str(scratch / "traces"),
            }
        )
        argv_ = [sys.executable, "-m", "gunicorn", "-c", "python:trace_conf", "trace_app:app"]
        server = Server("server", argv_, env, port, scratch / "server.log", ("predict",))
        try:
            server.start()
            server.wait_ready(args.start_timeout)
            url = server.url(workload.path)
            run_wrk(url, setup.bodies["predict"], 1, args, workload)
            load = run_wrk(url, setup.bodies["predict"], args.seconds, args, workload)
        finally:
            server.stop()
        rps = load["requests"] / (load["duration_us"] / 1e6)
        print(
            f"wrk {args.connections} connections, {args.seconds} s: {rps:,.0f} req/s, p50 "
            f"{load['p50_us'] / 1000:.2f} ms, p90 {load['p90_us'] / 1000:.2f} ms, p99 "
            f"{load['p99_us'] / 1000:.2f} ms (load {loadavg()}, env {extra_env or 'shipped'})"
        )
        for path in sorted((scratch / "traces").glob("*.json")):
            print("\n".join(describe(json.loads(path.read_text()))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
