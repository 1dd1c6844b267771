"""The performance suite behind `nox -s bench`: interleaved rounds, then the report.

The servers (servers.py) are loaded with wrk in interleaved rounds (round-robin, order
rotated every round) so that they share the same machine conditions; then vegeta sends
single-row /predict at fixed rates to ours and the seed's (load.py). Every figure is the
median of the rounds and every target a ratio to references measured in the same run
(report.py), because absolute numbers move with the machine's load. Results:
bench/results/<label>.{md,json,png}. All traffic goes to 127.0.0.1, every load is bounded
in time, and only the processes this script started are stopped, by PID.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import report
from load import check_answers, find_vegeta, percentile, run_vegeta, run_wrk, wrk_version
from servers import (
    BENCH,
    OFF_SERVERS,
    BenchError,
    Server,
    Setup,
    busy_cores,
    cpu_seconds,
    gunicorn_settings,
    loadavg,
    make_server,
    prepare,
)
from workloads import Workload, make_workloads

OPEN_LOOP_SERVERS = ("server", "seed")


def measure(
    server: Server, workload: Workload, body: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """Warm up, then one measured wrk run; adds the server's CPU time per request."""
    url = server.url(workload.path)
    if args.warmup > 0:
        run_wrk(url, body, args.warmup, args, workload)
    cpu_before = cpu_seconds(server.processes())
    workers_before = server.worker_cpu()
    summary = run_wrk(url, body, args.duration, args, workload)
    cpu_used = cpu_seconds(server.processes()) - cpu_before
    workers_after = server.worker_cpu()
    seconds = summary["duration_us"] / 1e6
    requests = summary["requests"]
    socket_errors = sum(summary[k] for k in ("connect", "read", "write", "timeout"))
    return {
        "server": server.key,
        "workload": workload.key,
        "requests": requests,
        "rps": round(requests / seconds, 1),
        "rows_per_s": round(requests * workload.rows / seconds, 1),
        "p50_ms": summary["p50_us"] / 1000,
        "p99_ms": summary["p99_us"] / 1000,
        "non_2xx": summary["status"],
        "socket_errors": socket_errors,
        "server_cpu_us_per_request": round(cpu_used / max(requests, 1) * 1e6, 1),
        "server_cpu_cores": round(cpu_used / seconds, 2),
        "worker_share": worker_share(workers_before, workers_after),
        "load1": loadavg()[0],
    }


def worker_share(before: dict[int, float], after: dict[int, float]) -> float | None:
    """The least busy worker's share of the workers' CPU, times their count (1.0: even).

    CPU time per worker stands for its share of the requests: every request costs a worker
    about the same. 0.0 means one worker served nothing (it held no connection).
    """
    used = [after[pid] - before[pid] for pid in after if pid in before]
    total = sum(used)
    if len(used) < 2 or total <= 0:
        return None
    return round(min(used) / total * len(used), 3)


def closed_loop(
    servers: list[Server], workloads: dict[str, Workload], setup: Setup, args: argparse.Namespace
) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """The interleaved wrk rounds; returns every measured row and memory after each round."""
    rows: list[dict[str, Any]] = []
    round_memory: dict[str, list[dict[str, Any]]] = {s.key: [] for s in servers}
    for number in range(args.rounds):
        print(f"== round {number + 1}/{args.rounds} (load {loadavg()})", flush=True)
        order = list(workloads.values())
        order = order[number % len(order) :] + order[: number % len(order)]
        for workload in order:
            serving = [s for s in servers if workload.key in s.workloads]
            shift = number % max(len(serving), 1)
            for server in serving[shift:] + serving[:shift]:
                row = measure(server, workload, setup.bodies[workload.key], args)
                row["round"] = number
                rows.append(row)
                print(
                    f"   {server.key:11} {workload.key:12} {row['rps']:9,.0f} req/s "
                    f"{row['rows_per_s']:12,.0f} rows/s p50 {row['p50_ms']:6.2f} ms "
                    f"p99 {row['p99_ms']:6.2f} ms non-2xx {row['non_2xx']} "
                    f"sock {row['socket_errors']} cpu "
                    f"{row['server_cpu_us_per_request']:,.0f} µs/req",
                    flush=True,
                )
        for server in servers:
            round_memory[server.key].append(server.memory())
    return rows, round_memory


def open_loop(
    servers: list[Server],
    workloads: dict[str, Workload],
    setup: Setup,
    table: dict[str, dict[str, dict[str, Any]]],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Single-row /predict at fixed fractions of the seed's closed-loop maximum, interleaved."""
    fractions = [float(f) for f in args.open_loop_fractions.split(",") if f.strip()]
    vegeta = find_vegeta(args.vegeta)
    seed_max = table.get("seed", {}).get("predict", {}).get("rps")
    chosen = [s for s in servers if s.key in OPEN_LOOP_SERVERS]
    skipped = None
    if not fractions:
        skipped = "--open-loop-fractions is empty"
    elif vegeta is None:
        skipped = "vegeta not found (`nox -s bench` builds it with Go; or pass --vegeta PATH)"
    elif not seed_max or "predict" not in workloads or len(chosen) < len(OPEN_LOOP_SERVERS):
        skipped = "needs the seed's and our single-row /predict in this run"
    if skipped:
        print(f"== fixed rate: not measured: {skipped}", flush=True)
        return {"skipped": skipped, "summary": []}
    assert vegeta is not None  # noqa: S101 - checked above
    rates = [max(1, round(seed_max * f)) for f in fractions]
    seconds = args.open_loop_seconds or args.duration
    runs: list[dict[str, Any]] = []
    workload = workloads["predict"]
    for number in range(args.rounds):
        for rate in rates:
            shift = (number + rates.index(rate)) % len(chosen)
            for server in chosen[shift:] + chosen[:shift]:
                run = run_vegeta(
                    vegeta, server, workload, setup.bodies["predict"], rate, seconds, setup.scratch
                )
                run["round"] = number
                runs.append(run)
                ordered = sorted(run["latencies_ms"])
                print(
                    f"   fixed rate {rate:6,}/s {server.key:8} p50 "
                    f"{percentile(ordered, 0.5):7.2f} ms p99 "
                    f"{percentile(ordered, 0.99):7.2f} ms failures {run['failures']}",
                    flush=True,
                )
    summary = report.open_loop_summary(runs)
    return {
        "fractions": fractions,
        "seed_max_rps": seed_max,
        "rates": rates,
        "seconds": seconds,
        "summary": summary,
        "rounds": [{k: v for k, v in r.items() if k != "latencies_ms"} for r in runs],
    }


def memory_scaling(
    setup: Setup,
    keys: Sequence[str],
    counts: Sequence[int],
    workloads: dict[str, Workload],
    args: argparse.Namespace,
) -> dict[str, list[dict[str, Any]]]:
    """Memory with 1, 2, ... workers after every worker has served each workload."""
    scaling: dict[str, list[dict[str, Any]]] = {}
    for key in (k for k in keys if k != "server_auth" and k not in OFF_SERVERS):
        scaling[key] = []
        for count in counts:
            server = make_server(setup, key, workers=count)
            try:
                server.start()
                server.wait_ready(args.start_timeout)
                for workload_key in (k for k in server.workloads if k in workloads):
                    workload = workloads[workload_key]
                    body = setup.bodies[workload_key]
                    run_wrk(server.url(workload.path), body, 1, args, workload)
                time.sleep(0.5)
                scaling[key].append(server.memory())
            finally:
                server.stop()
            totals = scaling[key][-1]["total_mb"]
            print(
                f"   memory {key:8} workers={count}: PSS {totals['pss']:7.1f} MiB  "
                f"RSS {totals['rss']:7.1f} MiB  USS {totals['uss']:7.1f} MiB",
                flush=True,
            )
    return scaling


def versions() -> dict[str, str]:
    """Versions of the pieces on the request path."""
    found = {"python": platform.python_version()}
    for dist in (
        "flask",
        "werkzeug",
        "gunicorn",
        "gevent",
        "numpy",
        "scikit-learn",
        "orjson",
        "prometheus-client",
        "inference-server",
        "iris-model",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[dist] = metadata.version(dist)
    return found


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command line (after `nox -s bench --`)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up seconds before each")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--start-timeout", type=float, default=90.0)
    parser.add_argument(
        "--servers",
        default="server,server_auth,ceiling,seed",
        help="comma-separated subset to measure; 'tricks' adds every server_off_<trick> row"
        " (the speed tricks on/off)",
    )
    parser.add_argument(
        "--workloads",
        default="predict,v1,v2,batch,predict_auth,v2bin,v2bin_batch,v2_batch",
        help="comma-separated subset to measure",
    )
    parser.add_argument(
        "--memory-workers", default="1,2", help="worker counts for the memory scaling ('' skips)"
    )
    parser.add_argument(
        "--open-loop-fractions",
        default="0.25,0.5,0.75",
        help="fixed rates as fractions of the seed's closed-loop maximum ('' skips)",
    )
    parser.add_argument(
        "--open-loop-seconds",
        type=int,
        default=0,
        help="seconds per fixed rate (default --duration)",
    )
    parser.add_argument("--vegeta", help="the vegeta binary (default: on PATH)")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for server AND ceiling (experiments, e.g. INFERENCE_THREADS=4)",
    )
    parser.add_argument("--label", default="latest", help="results file name (default latest)")
    parser.add_argument("--output-dir", type=Path, default=BENCH / "results")
    parser.add_argument("--no-chart", action="store_true", help="skip the PNG")
    return parser.parse_args(argv)


@contextlib.contextmanager
def terminate_on_signals() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP into an exception so the servers are stopped on the way out."""

    def handler(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suite; exit 0 if every target passes, 1 if one fails, 2 if it could not run."""
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print(
            "wrk is missing: install it with `apt-get install -y wrk` (Debian/Ubuntu) or "
            "`brew install wrk` (macOS).",
            file=sys.stderr,
        )
        return 2
    keys = [k.strip() for k in args.servers.split(",") if k.strip()]
    if "tricks" in keys:
        keys = [k for k in keys if k != "tricks"] + list(OFF_SERVERS)
    extra_env = dict(item.split("=", 1) for item in args.env)
    wanted = {w.strip() for w in args.workloads.split(",")}
    workloads = {k: w for k, w in make_workloads().items() if k in wanted}
    started = datetime.now(UTC)
    busy_before = busy_cores()
    load_before = loadavg()
    print(
        f"== bench: nproc={os.cpu_count()} load={load_before} busy cores={busy_before}", flush=True
    )

    with tempfile.TemporaryDirectory(prefix="bench-") as tmp, terminate_on_signals():
        setup = prepare(Path(tmp), workloads, extra_env)
        if setup.server_argv is None:
            keys = [k for k in keys if k in {"seed"}]
        conf = gunicorn_settings(setup) if setup.server_argv else {"error": "not installed"}
        print(f"== shipped gunicorn config: {conf}", flush=True)
        servers = [make_server(setup, key) for key in keys]
        servers = [s for s in servers if any(w in workloads for w in s.workloads)]
        answers = {}
        try:
            for server in servers:
                server.start()
            for server in servers:
                server.wait_ready(args.start_timeout)
                answers[server.key] = check_answers(server, workloads)
                print(
                    f"== {server.key} ready on port {server.port}: {answers[server.key]}",
                    flush=True,
                )
            rows, round_memory = closed_loop(servers, workloads, setup, args)
            table = report.summarise(rows)
            fixed_rate = open_loop(servers, workloads, setup, table, args)
        finally:
            for server in servers:
                server.stop()

        counts = [int(c) for c in args.memory_workers.split(",") if c.strip()]
        scaling = memory_scaling(setup, keys, counts, workloads, args) if counts else {}

    ratios = report.ratios(rows)
    worker_increments = {key: report.increments(points) for key, points in scaling.items()}
    result: dict[str, Any] = {
        "label": args.label,
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "environment": {
            "nproc": os.cpu_count(),
            "load_before": load_before,
            "load_after": loadavg(),
            "busy_cores_before": busy_before,
            "uptime": subprocess.run(
                ["uptime"],  # noqa: S607 - coreutils/procps, looked up on PATH on purpose
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip(),
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
            "versions": versions(),
            "wrk": wrk_version(),
        },
        "gunicorn_conf": conf,
        "answers": answers,
        "table": {
            s: {w: {k: v for k, v in c.items() if k != "rounds"} for w, c in ws.items()}
            for s, ws in table.items()
        },
        "ratios": ratios,
        "on_off": report.on_off(rows),
        "spread": report.spread(rows),
        "open_loop": fixed_rate,
        "memory": {
            "scaling": scaling,
            "increments": worker_increments,
            "during_load": round_memory,
        },
        "rounds": rows,
    }
    result["targets"] = report.targets(
        table,
        ratios,
        worker_increments.get("server", {}),
        fixed_rate["summary"],
        result["spread"],
    )

    args.output_dir.mkdir(parents=True, exist_ok=True)
    text = report.markdown(result)
    (args.output_dir / f"{args.label}.md").write_text(text)
    (args.output_dir / f"{args.label}.json").write_text(json.dumps(result, indent=2) + "\n")
    if not args.no_chart:
        from chart import draw  # noqa: PLC0415 - matplotlib only when charting

        draw(result, args.output_dir / f"{args.label}.png")
    print()
    print(text)
    print(
        f"== written: {args.output_dir}/{args.label}.{{md,json{'' if args.no_chart else ',png'}}}"
    )
    return 0 if all(t["pass"] for t in result["targets"]) else 1


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH))
    try:
        sys.exit(main())
    except BenchError as failure:
        print(f"bench could not run: {failure}", file=sys.stderr)
        sys.exit(2)
