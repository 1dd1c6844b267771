"""The performance suite behind `nox -s bench`.

It starts three servers on 127.0.0.1, each on a free port, and loads them with wrk
in interleaved rounds so that they share the same machine conditions:

- ``server``: the inference server exactly as shipped (the ``inference-server`` console
  script, i.e. Gunicorn with ``inference_server.gunicorn_conf``, default settings);
- ``ceiling``: a constant-JSON Flask app (bench/apps/ceiling.py) under the SAME Gunicorn
  configuration module: the framework ceiling for our configuration;
- ``seed``: the seed-style app (bench/apps/seed.py: sklearn ``predict`` per request)
  under ``gunicorn --workers 2`` with Gunicorn's defaults: the "before" baseline.

Every figure is the median of the rounds, and the targets are checked on ratios to the
references measured in the same run, because absolute numbers move with the machine's
load. Results: bench/results/<label>.{md,json,png}. Every load is bounded in time, all
traffic goes to 127.0.0.1, and only the processes this script started are stopped, by PID.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
# tests/support/local_http.py: the free-port and readiness helpers every test tree shares.
sys.path.insert(0, str(ROOT / "tests" / "support"))
from local_http import ServerExitedError, free_port, wait_for_http  # noqa: E402

APPS = BENCH / "apps"
LUA = BENCH / "post.lua"
HOST = "127.0.0.1"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024

# The targets of issue #8, checked on every run (ratios are medians of per-round ratios).
PREDICT_VS_CEILING = 0.90
PREDICT_VS_SEED = 1.5
V2_VS_PREDICT = 0.85
BATCH_ROWS_PER_S = 2_000_000
WORKER_INCREMENT_MB = 60.0

BATCH_ROWS = 1000
SINGLE_ROW = [5.1, 3.5, 1.4, 0.2]

# Environment variables that would change how the servers run: removed from the inherited
# environment so that "as shipped" means the defaults (use --env to experiment).
SERVER_ENV_PREFIXES = ("INFERENCE_", "GUNICORN_", "PROMETHEUS_MULTIPROC_DIR", "WEB_CONCURRENCY")

SERVER_LABELS = {
    "server": "inference-server (as shipped)",
    "ceiling": "framework ceiling (constant JSON, same Gunicorn config)",
    "seed": "seed baseline (sklearn predict, gunicorn --workers 2)",
}
WORKLOAD_LABELS = {
    "predict": "/predict, 1 row",
    "v2": "V2 infer, 1 row",
    "batch": f"/predict, {BATCH_ROWS:,} rows",
}


class BenchError(RuntimeError):
    """The harness itself could not measure (a server did not start, wrk failed...)."""


# --------------------------------------------------------------------------- workloads


@dataclass(frozen=True)
class Workload:
    """One kind of request: a route, a JSON body and the rows it carries."""

    key: str
    path: str
    rows: int
    body: bytes


def iris_rows(count: int) -> list[list[float]]:
    """Real iris measurements (shipped with scikit-learn), cycled to `count` rows."""
    from sklearn.datasets import load_iris  # noqa: PLC0415 - heavy, only when building bodies

    data = load_iris().data.tolist()
    return [[float(value) for value in data[(i * 37) % len(data)]] for i in range(count)]


def make_workloads() -> dict[str, Workload]:
    """The three workloads of the suite, with their bodies."""
    v2 = {
        "id": "bench",
        "inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": SINGLE_ROW}],
    }
    batch = {"instances": iris_rows(BATCH_ROWS)}
    return {
        "predict": Workload(
            "predict", "/predict", 1, json.dumps({"features": SINGLE_ROW}).encode()
        ),
        "v2": Workload("v2", "/v2/models/iris/infer", 1, json.dumps(v2).encode()),
        "batch": Workload("batch", "/predict", BATCH_ROWS, json.dumps(batch).encode()),
    }


# ----------------------------------------------------------------------------- /proc


def children_of(pid: int) -> list[int]:
    """All descendants of `pid` (Gunicorn workers), found by scanning /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            # Field 4 (ppid) follows the parenthesised command, which may contain spaces.
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        kids = sorted(child for child, ppid in parents.items() if ppid == parent)
        found += kids
        frontier += kids
    return found


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time consumed so far by `pids` (all their threads)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / CLOCK_TICKS


def memory_kb(pid: int) -> dict[str, int]:
    """RSS, PSS and USS (private pages) of one process, in KiB."""
    rollup: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            name, _, rest = line.partition(":")
            parts = rest.split()
            if len(parts) == 2 and parts[1] == "kB":
                rollup[name] = int(parts[0])
    if not rollup:  # kernels without smaps_rollup: RSS only
        with contextlib.suppress(OSError, IndexError, ValueError):
            rss_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
            return {"rss": rss_pages * PAGE_KB, "pss": 0, "uss": 0}
    return {
        "rss": rollup.get("Rss", 0),
        "pss": rollup.get("Pss", 0),
        "uss": rollup.get("Private_Clean", 0) + rollup.get("Private_Dirty", 0),
    }


def busy_cores(seconds: float = 1.0) -> float:
    """How many cores the whole machine kept busy over `seconds` (from /proc/stat)."""

    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = values[3] + values[4]  # idle + iowait
        return sum(values) - idle, sum(values)

    busy0, total0 = sample()
    time.sleep(seconds)
    busy1, total1 = sample()
    return round((busy1 - busy0) / max(total1 - total0, 1) * (os.cpu_count() or 1), 2)


def loadavg() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(value, 2) for value in os.getloadavg()]


# --------------------------------------------------------------------------- servers


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    """The inherited environment minus server settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(SERVER_ENV_PREFIXES)}
    env.update(extra)
    return env


@dataclass
class Server:
    """One server process tree this script started (stopped by PID only)."""

    key: str
    argv: list[str]
    env: dict[str, str]
    port: int
    log: Path
    workloads: tuple[str, ...]
    cwd: Path = ROOT
    process: subprocess.Popen[bytes] | None = None
    known_pids: set[int] = field(default_factory=set)

    def url(self, path: str) -> str:
        """The URL of `path` on this server."""
        return f"http://{HOST}:{self.port}{path}"

    def start(self) -> None:
        """Start the process, its output going to the log file."""
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - fixed argv built by this script
                self.argv, env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT
            )
        self.known_pids.add(self.process.pid)

    def wait_ready(self, timeout: float) -> None:
        """Poll GET / until it answers 200, or fail with the log's tail."""
        assert self.process is not None  # noqa: S101 - internal invariant
        try:
            wait_for_http(self.url("/"), timeout=timeout, process=self.process, interval=0.2)
        except (ServerExitedError, TimeoutError) as error:
            raise BenchError(f"{self.key}: {error}\n{self.tail()}") from error
        self.pids()

    def tail(self, lines: int = 30) -> str:
        """The last lines of the server's log."""
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def pids(self) -> list[int]:
        """The master and its current workers."""
        if self.process is None or self.process.poll() is not None:
            return []
        pids = [self.process.pid, *children_of(self.process.pid)]
        self.known_pids.update(pids)
        return pids

    def memory(self) -> dict[str, Any]:
        """Per-process and total RSS/PSS/USS of the master and workers, in MiB."""
        pids = self.pids()
        per_process = {pid: memory_kb(pid) for pid in pids}
        totals = {
            kind: round(sum(m[kind] for m in per_process.values()) / 1024, 1)
            for kind in ("rss", "pss", "uss")
        }
        return {
            "workers": len(pids) - 1,
            "total_mb": totals,
            "processes_mb": [
                {"pid": pid, "role": "master" if i == 0 else "worker"}
                | {k: round(v / 1024, 1) for k, v in per_process[pid].items()}
                for i, pid in enumerate(pids)
            ],
        }

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the master; after `timeout`, SIGKILL every PID this server ever had."""
        if self.process is None:
            return
        self.pids()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        for pid in sorted(self.known_pids - {self.process.pid}):
            if Path(f"/proc/{pid}").exists() and _parent_chain_is_ours(pid, self.known_pids):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.process = None


def _parent_chain_is_ours(pid: int, ours: set[int]) -> bool:
    """Whether a PID still belongs to us: a known PID whose parent is gone or known."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        return ppid in ours or ppid == 1
    return False


@dataclass
class Setup:
    """What the servers need: a trained model, bodies, a scratch directory."""

    scratch: Path
    model_dir: Path | None
    seed_model: Path
    bodies: dict[str, Path]
    extra_env: dict[str, str]
    server_argv: list[str] | None


def prepare(scratch: Path, workloads: dict[str, Workload], extra_env: dict[str, str]) -> Setup:
    """Train the models (ours through iris_model, the seed's with plain sklearn), write bodies."""
    import joblib  # noqa: PLC0415
    from sklearn.datasets import load_iris  # noqa: PLC0415
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415

    bodies = {}
    for workload in workloads.values():
        bodies[workload.key] = scratch / f"{workload.key}.json"
        bodies[workload.key].write_bytes(workload.body)

    features, target = load_iris(return_X_y=True)
    seed_model = scratch / "seed-model.pkl"
    joblib.dump(LogisticRegression(max_iter=1000).fit(features, target), seed_model)

    model_dir: Path | None = None
    server_argv: list[str] | None = None
    try:
        import inference_server  # noqa: F401, PLC0415
        import iris_model  # noqa: PLC0415
    except ImportError as error:
        print(f"!! the server or library is not installed ({error}): references only", flush=True)
    else:
        model_dir = scratch / "model"
        iris_model.save(iris_model.train(seed=42).model, model_dir)
        script = Path(sys.executable).parent / "inference-server"
        server_argv = (
            [str(script)] if script.exists() else [sys.executable, "-m", "inference_server"]
        )
    return Setup(scratch, model_dir, seed_model, bodies, extra_env, server_argv)


def gunicorn_has_control_socket() -> bool:
    """Whether this Gunicorn has the control socket (>= 25.1), whose path is per-user."""
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--help"], capture_output=True, text=True, check=False
    )
    return "--control-socket" in result.stdout


def make_server(setup: Setup, key: str, workers: int | None = None) -> Server:
    """A not-yet-started server of kind `key` on a fresh port (`workers` overrides the count)."""
    port = free_port()
    bind = f"{HOST}:{port}"
    log = setup.scratch / f"{key}-{workers or 'default'}-{port}.log"
    scratch = setup.scratch / f"{key}-{port}"
    scratch.mkdir()
    common = {"PROMETHEUS_MULTIPROC_DIR": str(scratch / "prometheus")}
    (scratch / "prometheus").mkdir()
    if key in {"server", "ceiling"}:
        env = clean_env(common | setup.extra_env | {"INFERENCE_BIND": bind})
        if workers is not None:
            env["WEB_CONCURRENCY"] = str(workers)
        if key == "server":
            assert setup.server_argv is not None  # noqa: S101 - prepare() found the server
            assert setup.model_dir is not None  # noqa: S101
            env["INFERENCE_MODEL_DIR"] = str(setup.model_dir)
            return Server(key, setup.server_argv, env, port, log, ("predict", "v2", "batch"))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(APPS), env.get("PYTHONPATH")]))
        argv = [sys.executable, "-m", "gunicorn", "-c", "python:inference_server.gunicorn_conf"]
        return Server(key, [*argv, "ceiling:app"], env, port, log, ("predict", "v2", "batch"), APPS)
    env = clean_env({"BENCH_SEED_MODEL": str(setup.seed_model)})
    argv = [sys.executable, "-m", "gunicorn", "--workers", str(workers or 2), "--bind", bind]
    if CONTROL_SOCKET:  # keep the default (enabled) but not at the shared per-user path
        argv += ["--control-socket", str(scratch / "gunicorn.ctl")]
    return Server(key, [*argv, "seed:app"], env, port, log, ("predict", "batch"), APPS)


CONTROL_SOCKET = False


# ------------------------------------------------------------------------------- wrk


def run_wrk(url: str, body: Path, seconds: float, args: argparse.Namespace) -> dict[str, Any]:
    """One bounded wrk run; returns its summary line (see post.lua)."""
    duration = max(1, round(seconds))
    cmd = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{duration}s",
        "--latency",
        "--timeout",
        "5s",
        "-s",
        str(LUA),
        url,
        "--",
        str(body),
    ]
    try:
        result = subprocess.run(  # noqa: S603
            cmd, capture_output=True, text=True, timeout=duration + 30, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise BenchError(f"wrk did not finish in time: {' '.join(cmd)}") from error
    for line in result.stdout.splitlines():
        if line.startswith("BENCH_WRK "):
            summary: dict[str, Any] = json.loads(line.removeprefix("BENCH_WRK "))
            return summary
    raise BenchError(f"wrk failed ({result.returncode}): {result.stdout}\n{result.stderr}")


def check_answers(server: Server, workloads: dict[str, Workload]) -> dict[str, str]:
    """One request per workload before the load: it must be 2xx JSON of the right size."""
    answers = {}
    for key in (k for k in server.workloads if k in workloads):
        workload = workloads[key]
        request = urllib.request.Request(  # noqa: S310 - 127.0.0.1 only
            server.url(workload.path),
            data=workload.body,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                document = json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise BenchError(
                f"{server.key} {workload.path}: HTTP {error.code} {error.read()[:300]!r}"
            ) from error
        if server.key != "ceiling" and workload.rows > 1:
            predictions = document.get("predictions")
            if not isinstance(predictions, list) or len(predictions) != workload.rows:
                raise BenchError(f"{server.key} batch answer is not {workload.rows} predictions")
        answers[key] = json.dumps(document)[:160]
    return answers


def measure(
    server: Server, workload: Workload, body: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """Warm up, then one measured wrk run; adds the server's CPU time per request."""
    url = server.url(workload.path)
    if args.warmup > 0:
        run_wrk(url, body, args.warmup, args)
    pids = server.pids()
    cpu_before = cpu_seconds(pids)
    summary = run_wrk(url, body, args.duration, args)
    cpu_used = cpu_seconds(server.pids()) - cpu_before
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
        "load1": loadavg()[0],
    }


# ---------------------------------------------------------------------------- memory


def memory_scaling(
    setup: Setup,
    keys: Sequence[str],
    counts: Sequence[int],
    workloads: dict[str, Workload],
    args: argparse.Namespace,
) -> dict[str, list[dict[str, Any]]]:
    """Memory with 1, 2, ... workers after every worker has served each workload."""
    scaling: dict[str, list[dict[str, Any]]] = {}
    for key in keys:
        scaling[key] = []
        for count in counts:
            server = make_server(setup, key, workers=count)
            try:
                server.start()
                server.wait_ready(args.start_timeout)
                for workload_key in (k for k in server.workloads if k in workloads):
                    url = server.url(workloads[workload_key].path)
                    run_wrk(url, setup.bodies[workload_key], 1, args)
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


def increments(points: list[dict[str, Any]]) -> dict[str, float | None]:
    """Largest memory added by one more worker, per kind, over consecutive worker counts."""
    result: dict[str, float | None] = {}
    for kind in ("rss", "pss", "uss"):
        steps = [
            (b["total_mb"][kind] - a["total_mb"][kind]) / max(b["workers"] - a["workers"], 1)
            for a, b in itertools.pairwise(points)
        ]
        result[kind] = round(max(steps), 1) if steps else None
    return result


# --------------------------------------------------------------------------- summary


def median(values: Sequence[float]) -> float:
    """The median, 0.0 for no values."""
    return float(statistics.median(values)) if values else 0.0


def summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Medians of rounds per server and workload; errors are summed."""
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        table.setdefault(row["server"], {}).setdefault(row["workload"], {"rounds": []})
        table[row["server"]][row["workload"]]["rounds"].append(row)
    for workloads in table.values():
        for cell in workloads.values():
            rounds = cell["rounds"]
            for metric in ("rps", "rows_per_s", "p50_ms", "p99_ms", "server_cpu_us_per_request"):
                cell[metric] = round(median([r[metric] for r in rounds]), 3)
            cell["rps_min"] = min(r["rps"] for r in rounds)
            cell["rps_max"] = max(r["rps"] for r in rounds)
            cell["non_2xx"] = sum(r["non_2xx"] for r in rounds)
            cell["socket_errors"] = sum(r["socket_errors"] for r in rounds)
            cell["requests"] = sum(r["requests"] for r in rounds)
    return table


def round_ratio(
    rows: list[dict[str, Any]], top: tuple[str, str], bottom: tuple[str, str]
) -> float | None:
    """Median over rounds of rps(top) / rps(bottom), each pair measured in the same round."""
    by_key = {(r["round"], r["server"], r["workload"]): r["rps"] for r in rows}
    rounds = sorted({r["round"] for r in rows})
    ratios = [
        by_key[(n, *top)] / by_key[(n, *bottom)]
        for n in rounds
        if (n, *top) in by_key and by_key.get((n, *bottom))
    ]
    return round(median(ratios), 3) if ratios else None


def targets(
    table: dict[str, dict[str, dict[str, Any]]],
    ratios: dict[str, float | None],
    worker_mb: dict[str, float | None],
) -> list[dict[str, Any]]:
    """The issue's targets as PASS/FAIL records (value None: not measured -> FAIL)."""
    ours = table.get("server", {})
    errors = sum(cell["non_2xx"] + cell["socket_errors"] for cell in ours.values())
    batch = ours.get("batch", {}).get("rows_per_s")
    specs = [
        (
            "/predict >= 0.9x framework ceiling",
            ratios.get("predict_vs_ceiling"),
            PREDICT_VS_CEILING,
            ">=",
            "x",
        ),
        (
            "/predict >= 1.5x seed baseline",
            ratios.get("predict_vs_seed"),
            PREDICT_VS_SEED,
            ">=",
            "x",
        ),
        ("0 non-2xx and 0 socket errors (server)", errors if ours else None, 0, "<=", ""),
        ("V2 infer >= 0.85x /predict", ratios.get("v2_vs_predict"), V2_VS_PREDICT, ">=", "x"),
        ("1,000-row batch >= 2,000,000 rows/s", batch, BATCH_ROWS_PER_S, ">=", " rows/s"),
        (
            "each extra worker adds <= 60 MB (PSS)",
            worker_mb.get("pss"),
            WORKER_INCREMENT_MB,
            "<=",
            " MB",
        ),
    ]
    records = []
    for name, value, threshold, op, unit in specs:
        passed = value is not None and (value >= threshold if op == ">=" else value <= threshold)
        records.append(
            {
                "target": name,
                "value": value,
                "threshold": threshold,
                "op": op,
                "unit": unit,
                "pass": passed,
            }
        )
    return records


def fmt(value: float | None, digits: int = 0) -> str:
    """A number with thousands separators, or 'n/a'."""
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def markdown(result: dict[str, Any]) -> str:
    """The results as Markdown: context, throughput, ratios, memory, PASS/FAIL."""
    env = result["environment"]
    conf = result["gunicorn_conf"]
    lines = [
        f"# Benchmark results ({result['label']})",
        "",
        f"- when: {result['started']} -> {result['finished']} (UTC)",
        f"- machine: `nproc` = {env['nproc']}, load average before {env['load_before']}, "
        f"after {env['load_after']}; busy cores before the run (1 s sample): "
        f"{env['busy_cores_before']}",
        f"- versions: {', '.join(f'{k} {v}' for k, v in env['versions'].items())}",
        f"- shipped Gunicorn config: {', '.join(f'{k}={v}' for k, v in conf.items())}",
        f"- load: wrk {env['wrk']}, {result['args']['threads']} thread, "
        f"{result['args']['connections']} connections, {result['args']['warmup']} s warm-up + "
        f"{result['args']['duration']} s per measurement, {result['args']['rounds']} interleaved "
        "rounds; medians of rounds",
    ]
    if result["args"].get("env"):
        lines.append(f"- extra environment for server and ceiling: `{result['args']['env']}`")
    lines += [
        "",
        "## Throughput and latency (median of rounds)",
        "",
        "| server | workload | req/s | rows/s | p50 ms | p99 ms | non-2xx | socket errors "
        "| server CPU µs/req |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for server, workloads in result["table"].items():
        for workload, cell in workloads.items():
            lines.append(
                f"| {server} | {WORKLOAD_LABELS[workload]} | {fmt(cell['rps'])} "
                f"| {fmt(cell['rows_per_s'])} | {cell['p50_ms']:.2f} | {cell['p99_ms']:.2f} "
                f"| {cell['non_2xx']} | {cell['socket_errors']} "
                f"| {fmt(cell['server_cpu_us_per_request'])} |"
            )
    lines += ["", "## Ratios (median of per-round ratios, same run)", ""]
    lines += ["| ratio | value |", "|---|---:|"]
    lines += [f"| {name} | {fmt(value, 3)} |" for name, value in result["ratios"].items()]
    lines += ["", "## Memory (MiB; master + workers, from /proc)", ""]
    lines += [
        "| server | workers | RSS | PSS | USS | per extra worker RSS / PSS / USS |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for server, points in result["memory"]["scaling"].items():
        inc = result["memory"]["increments"][server]
        for point in points:
            t = point["total_mb"]
            lines.append(
                f"| {server} | {point['workers']} | {t['rss']:.1f} | {t['pss']:.1f} "
                f"| {t['uss']:.1f} | {fmt(inc['rss'], 1)} / {fmt(inc['pss'], 1)} / "
                f"{fmt(inc['uss'], 1)} |"
            )
    lines += ["", "## Targets", "", "```"]
    lines += [target_line(t) for t in result["targets"]]
    lines += ["```", ""]
    return "\n".join(lines)


def target_line(record: dict[str, Any]) -> str:
    """One PASS/FAIL line."""
    value = record["value"]
    shown = "not measured" if value is None else f"{value:,.3g}{record['unit']}"
    if isinstance(value, float) and value >= 1000:
        shown = f"{value:,.0f}{record['unit']}"
    verdict = "PASS" if record["pass"] else "FAIL"
    return f"{verdict}  {record['target']}: {shown}"


# -------------------------------------------------------------------------- metadata


def gunicorn_settings(setup: Setup) -> dict[str, Any]:
    """The shipped config module's effective settings, read the way Gunicorn reads them."""
    code = (
        "import json\n"
        "from gunicorn.config import Config\n"
        "from gunicorn.app.base import Application\n"
        "class A(Application):\n"
        "    def init(self, *a): pass\n"
        "    def load(self): pass\n"
        "    def load_config(self):\n"
        "        self.cfg = Config()\n"
        "        for k, v in self.get_config_from_module_name('inference_server.gunicorn_conf')"
        ".items():\n"
        "            if k in self.cfg.settings and v is not None: self.cfg.set(k.lower(), v)\n"
        "a = A()\n"
        "c = a.cfg\n"
        "print(json.dumps({'worker_class': c.worker_class_str, 'workers': c.workers,"
        " 'threads': c.threads, 'keepalive': c.keepalive, 'preload_app': c.preload_app,"
        " 'accesslog': c.accesslog, 'max_requests': c.max_requests,"
        " 'worker_tmp_dir': c.worker_tmp_dir}))\n"
    )
    env = clean_env(setup.extra_env | {"INFERENCE_BIND": f"{HOST}:0"})
    env["PROMETHEUS_MULTIPROC_DIR"] = str(setup.scratch / "conf-prometheus")
    Path(env["PROMETHEUS_MULTIPROC_DIR"]).mkdir(exist_ok=True)
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1:]}
    settings: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return settings


def versions() -> dict[str, str]:
    """Versions of the pieces on the request path."""
    found = {"python": platform.python_version()}
    for dist in (
        "flask",
        "werkzeug",
        "gunicorn",
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


def wrk_version() -> str:
    """Wrk's version line."""
    result = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)  # noqa: S607
    first = (result.stdout or result.stderr).strip().splitlines()
    return first[0].split(" [")[0] if first else "?"


# ------------------------------------------------------------------------------ main


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
        "--servers", default="server,ceiling,seed", help="comma-separated subset to measure"
    )
    parser.add_argument(
        "--workloads", default="predict,v2,batch", help="comma-separated subset to measure"
    )
    parser.add_argument(
        "--memory-workers", default="1,2", help="worker counts for the memory scaling ('' skips)"
    )
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


def main(argv: Sequence[str] | None = None) -> int:  # noqa: PLR0915 - linear script
    """Run the suite; exit 0 if every target passes, 1 if one fails, 2 if it could not run."""
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print(
            "wrk is missing: install it with `apt-get install -y wrk` (Debian/Ubuntu) or "
            "`brew install wrk` (macOS).",
            file=sys.stderr,
        )
        return 2
    global CONTROL_SOCKET  # noqa: PLW0603 - probed once
    CONTROL_SOCKET = gunicorn_has_control_socket()
    keys = [k.strip() for k in args.servers.split(",") if k.strip()]
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
            keys = [k for k in keys if k not in {"server", "ceiling"}]
        conf = gunicorn_settings(setup) if setup.server_argv else {"error": "not installed"}
        print(f"== shipped gunicorn config: {conf}", flush=True)
        servers = [make_server(setup, key) for key in keys]
        rows: list[dict[str, Any]] = []
        round_memory: dict[str, list[dict[str, Any]]] = {key: [] for key in keys}
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
                            f"   {server.key:8} {workload.key:8} {row['rps']:9,.0f} req/s "
                            f"{row['rows_per_s']:12,.0f} rows/s p50 {row['p50_ms']:6.2f} ms "
                            f"p99 {row['p99_ms']:6.2f} ms non-2xx {row['non_2xx']} "
                            f"sock {row['socket_errors']} cpu "
                            f"{row['server_cpu_us_per_request']:,.0f} µs/req",
                            flush=True,
                        )
                for server in servers:
                    round_memory[server.key].append(server.memory())
        finally:
            for server in servers:
                server.stop()

        counts = [int(c) for c in args.memory_workers.split(",") if c.strip()]
        scaling = memory_scaling(setup, keys, counts, workloads, args) if counts else {}

    table = summarise(rows)
    ratios = {
        "predict_vs_ceiling": round_ratio(rows, ("server", "predict"), ("ceiling", "predict")),
        "predict_vs_seed": round_ratio(rows, ("server", "predict"), ("seed", "predict")),
        "v2_vs_predict": round_ratio(rows, ("server", "v2"), ("server", "predict")),
        "v2_vs_ceiling": round_ratio(rows, ("server", "v2"), ("ceiling", "v2")),
        "batch_vs_ceiling": round_ratio(rows, ("server", "batch"), ("ceiling", "batch")),
        "batch_vs_seed": round_ratio(rows, ("server", "batch"), ("seed", "batch")),
        "ceiling_vs_seed_predict": round_ratio(rows, ("ceiling", "predict"), ("seed", "predict")),
    }
    worker_increments = {key: increments(points) for key, points in scaling.items()}
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
        "memory": {
            "scaling": scaling,
            "increments": worker_increments,
            "during_load": round_memory,
        },
        "rounds": rows,
    }
    result["targets"] = targets(table, ratios, worker_increments.get("server", {}))

    args.output_dir.mkdir(parents=True, exist_ok=True)
    text = markdown(result)
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
