"""The servers the bench starts and watches: ours as shipped and the references.

- ``server``: the inference server exactly as shipped (the ``inference-server`` console
  script, i.e. Gunicorn with ``inference_server.gunicorn_conf``, default settings);
- ``server_auth``: the same with a bearer token configured (the auth-on row);
- ``ceiling``: a constant-JSON Flask app (apps/ceiling.py) under the SAME Gunicorn
  configuration module: the framework ceiling for our configuration;
- ``seed``: the seed-style app (apps/seed.py: sklearn ``predict`` per request) under
  ``gunicorn --workers 2`` with Gunicorn's defaults: the "before" baseline;
- ``server_granian``: the shipped server under Granian (``INFERENCE_HTTP_SERVER=granian``);
- ``server_shared``, ``ceiling_shared``: the shipped server and the ceiling with the workers on
  one shared listening socket (``INFERENCE_REUSE_PORT=false``, Gunicorn's old way): the
  connection-spread rows;
- ``server_off_<trick>``: the shipped server with one speed trick turned off
  (apps/tricks_off.py, apps/tricks_off_conf.py): the on/off rows, each on the workloads the
  trick claims to speed up.

Process figures (CPU time, RSS/PSS/USS) come from psutil. Only processes started here are
stopped, by PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from workloads import AUTH_TOKEN, Workload

sys.path.insert(0, str(Path(__file__).resolve().parent / "apps"))
from tricks_off import TRICKS

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
# tests/support/local_http.py: the free-port and readiness helpers every test tree shares.
sys.path.insert(0, str(ROOT / "tests" / "support"))
from local_http import ServerExitedError, free_port, wait_for_http  # noqa: E402

APPS = BENCH / "apps"
HOST = "127.0.0.1"

# Environment variables that would change how the servers run: removed from the inherited
# environment so that "as shipped" means the defaults (use --env to experiment).
SERVER_ENV_PREFIXES = ("INFERENCE_", "GUNICORN_", "PROMETHEUS_MULTIPROC_DIR", "WEB_CONCURRENCY")

SERVER_LABELS = {
    "server": "inference-server (as shipped)",
    "server_auth": "inference-server, bearer auth on",
    "ceiling": "framework ceiling (constant JSON, same Gunicorn config)",
    "seed": "seed baseline (sklearn predict, gunicorn --workers 2)",
    "server_granian": "inference-server under Granian (INFERENCE_HTTP_SERVER=granian)",
    "server_shared": "inference-server, one shared socket (INFERENCE_REUSE_PORT=false)",
    "ceiling_shared": "framework ceiling, one shared socket (INFERENCE_REUSE_PORT=false)",
} | {f"server_off_{trick}": f"server with {what}" for trick, what in TRICKS.items()}
# Which workloads each server answers.
SERVES = {
    "server": ("predict", "v1", "v2", "batch", "v2bin", "v2bin_batch", "v2_batch"),
    "server_auth": ("predict_auth",),
    "ceiling": ("predict", "v2", "batch"),
    "seed": ("predict", "batch"),
    # The second front end and the connection-spread rows (issue 27).
    "server_granian": ("predict", "v2", "v2bin", "v2bin_batch", "v2_batch", "batch"),
    "server_shared": ("predict", "v2"),
    "ceiling_shared": ("predict", "v2"),
    # The on/off rows: each trick on the workloads it claims to speed up.
    "server_off_fair": ("predict", "v2"),
    "server_off_coalescing": ("predict", "v2"),
    "server_off_mallopt": ("predict", "batch"),
    "server_off_proof": ("predict", "v2", "v2_batch"),
    "server_off_number_rows": ("v2_batch",),
    "server_off_simdjson": ("batch",),
}
#: Rows that run the shipped server or ceiling with a setting changed (issue 27).
SHIPPED_VARIANTS: dict[str, dict[str, str]] = {
    "server_granian": {"INFERENCE_HTTP_SERVER": "granian"},
    "server_shared": {"INFERENCE_REUSE_PORT": "false"},
    "ceiling_shared": {"INFERENCE_REUSE_PORT": "false"},
}
#: The on/off servers, for the report.
OFF_SERVERS = tuple(key for key in SERVES if key.startswith("server_off_"))


class BenchError(RuntimeError):
    """The harness itself could not measure (a server did not start, wrk failed...)."""


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    """The inherited environment minus server settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(SERVER_ENV_PREFIXES)}
    env.update(extra)
    return env


def busy_cores(seconds: float = 1.0) -> float:
    """How many cores the whole machine kept busy over `seconds`."""
    return round(psutil.cpu_percent(interval=seconds) / 100 * (psutil.cpu_count() or 1), 2)


def loadavg() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(value, 2) for value in os.getloadavg()]


def cpu_seconds(processes: list[psutil.Process]) -> float:
    """User + system CPU time consumed so far by `processes` (all their threads)."""
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def memory_mb(process: psutil.Process) -> dict[str, float]:
    """RSS, PSS (shared pages split between the processes mapping them) and USS, in MiB."""
    with contextlib.suppress(psutil.Error):
        info = process.memory_full_info()
        return {kind: round(getattr(info, kind, 0) / 2**20, 1) for kind in ("rss", "pss", "uss")}
    return {"rss": 0.0, "pss": 0.0, "uss": 0.0}


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
    known: dict[int, psutil.Process] = field(default_factory=dict)

    def url(self, path: str) -> str:
        """The URL of `path` on this server."""
        return f"http://{HOST}:{self.port}{path}"

    def start(self) -> None:
        """Start the process, its output going to the log file."""
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - fixed argv built by this script
                self.argv, env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT
            )

    def wait_ready(self, timeout: float) -> None:
        """Poll GET / until it answers 200, or fail with the log's tail."""
        assert self.process is not None  # noqa: S101 - internal invariant
        try:
            wait_for_http(self.url("/"), timeout=timeout, process=self.process, interval=0.2)
        except (ServerExitedError, TimeoutError) as error:
            raise BenchError(f"{self.key}: {error}\n{self.tail()}") from error
        self.processes()

    def tail(self, lines: int = 30) -> str:
        """The last lines of the server's log."""
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def processes(self) -> list[psutil.Process]:
        """The master and its current workers (remembered, to stop strays later)."""
        if self.process is None or self.process.poll() is not None:
            return []
        try:
            master = psutil.Process(self.process.pid)
            found = [master, *master.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        for process in found:
            self.known.setdefault(process.pid, process)
        return found

    def worker_cpu(self) -> dict[int, float]:
        """CPU seconds used so far by each current worker (the master's children), by PID."""
        return {p.pid: cpu_seconds([p]) for p in self.processes()[1:]}

    def pids(self) -> list[int]:
        """The PIDs of the master and its current workers."""
        return [process.pid for process in self.processes()]

    def memory(self) -> dict[str, Any]:
        """Per-process and total RSS/PSS/USS of the master and workers, in MiB."""
        processes = self.processes()
        per_process = [memory_mb(process) for process in processes]
        return {
            "workers": len(processes) - 1,
            "total_mb": {
                kind: round(sum(m[kind] for m in per_process), 1) for kind in ("rss", "pss", "uss")
            },
            "processes_mb": [
                {"pid": process.pid, "role": "master" if i == 0 else "worker"} | figures
                for i, (process, figures) in enumerate(zip(processes, per_process, strict=True))
            ],
        }

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the master; after `timeout`, SIGKILL every process of ours still alive.

        psutil.Process remembers each PID's start time, so a recycled PID is never killed.
        """
        if self.process is None:
            return
        self.processes()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        for process in self.known.values():
            with contextlib.suppress(psutil.Error):
                if process.is_running():
                    process.kill()
        self.process = None


@dataclass
class Setup:
    """What the servers need: a trained model, bodies, a scratch directory."""

    scratch: Path
    model_dir: Path | None
    seed_model: Path
    bodies: dict[str, Path]
    extra_env: dict[str, str]
    server_argv: list[str] | None
    control_socket: bool = False


def prepare(scratch: Path, workloads: dict[str, Workload], extra_env: dict[str, str]) -> Setup:
    """Train the models (ours through iris_model, the seed's with plain sklearn), write bodies."""
    import joblib  # noqa: PLC0415
    from sklearn.datasets import load_iris  # noqa: PLC0415
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415

    bodies = {}
    for workload in workloads.values():
        bodies[workload.key] = scratch / f"{workload.key}.body"
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
    control = gunicorn_has_control_socket()
    return Setup(scratch, model_dir, seed_model, bodies, extra_env, server_argv, control)


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
    if key in OFF_SERVERS:
        assert setup.model_dir is not None  # noqa: S101 - prepare() found the server
        env = clean_env(common | setup.extra_env | {"INFERENCE_BIND": bind})
        env |= {"INFERENCE_MODEL_DIR": str(setup.model_dir), "BENCH_OFF": key[len("server_off_") :]}
        if workers is not None:
            env["WEB_CONCURRENCY"] = str(workers)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(APPS), env.get("PYTHONPATH")]))
        argv = [sys.executable, "-m", "gunicorn", "-c", "python:tricks_off_conf"]
        return Server(key, [*argv, "tricks_off:create()"], env, port, log, SERVES[key], APPS)
    variant = SHIPPED_VARIANTS.get(key, {})
    base = key.removesuffix("_granian").removesuffix("_shared")
    if base in {"server", "server_auth", "ceiling"}:
        # A variant's settings come after --env: the row means what its name says.
        env = clean_env(common | setup.extra_env | {"INFERENCE_BIND": bind} | variant)
        if workers is not None:
            env["WEB_CONCURRENCY"] = str(workers)
        if base != "ceiling":
            assert setup.server_argv is not None  # noqa: S101 - prepare() found the server
            assert setup.model_dir is not None  # noqa: S101
            env["INFERENCE_MODEL_DIR"] = str(setup.model_dir)
            if key == "server_auth":
                env["INFERENCE_AUTH_TOKENS"] = AUTH_TOKEN
            return Server(key, setup.server_argv, env, port, log, SERVES[key])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(APPS), env.get("PYTHONPATH")]))
        argv = [sys.executable, "-m", "gunicorn", "-c", "python:inference_server.gunicorn_conf"]
        return Server(key, [*argv, "ceiling:app"], env, port, log, SERVES[key], APPS)
    env = clean_env({"BENCH_SEED_MODEL": str(setup.seed_model)})
    argv = [sys.executable, "-m", "gunicorn", "--workers", str(workers or 2), "--bind", bind]
    if setup.control_socket:  # keep the default (enabled) but not at the shared per-user path
        argv += ["--control-socket", str(scratch / "gunicorn.ctl")]
    return Server(key, [*argv, "seed:app"], env, port, log, SERVES[key], APPS)


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
