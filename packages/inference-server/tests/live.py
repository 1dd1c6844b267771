"""Start and stop real `inference-server` processes on 127.0.0.1 for the live tests.

Every live suite runs under both front ends (``INFERENCE_HTTP_SERVER``): the ``server``
fixtures take :data:`FRONT_ENDS` as parameters, and a test of something only Gunicorn does
calls :func:`gunicorn_only`, which skips it under Granian with the reason printed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# tests/support (on sys.path through the root pytest config): the repository's one copy.
from local_http import free_port, wait_for_http
from local_http import http_get as get  # noqa: F401 - test_live_server imports it from here

START_TIMEOUT = 120.0  # a busy 2-core CI box imports scikit-learn slowly
FRONT_ENDS = ("gunicorn", "granian")


def children(pid: int) -> list[int]:
    """PIDs of the direct children of ``pid`` (the Gunicorn workers of a master)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(p) for p in path.read_text().split()]
    except FileNotFoundError:
        return []


@dataclass
class Server:
    """A running inference-server (the Popen is the Gunicorn or Granian master itself)."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path
    front_end: str = "gunicorn"

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://127.0.0.1:{self.port}"

    def workers(self) -> list[int]:
        """PIDs of the current workers."""
        return children(self.process.pid)

    def wait_ready(self, n_workers: int, timeout: float = START_TIMEOUT) -> None:
        """Wait until every worker has booted and /readyz answers 200."""
        wait_for_http(
            f"{self.url}/readyz",
            timeout=timeout,
            process=self.process,
            condition=lambda: self.log.read_text().count("trained the default model") >= n_workers,
            describe=lambda: self.log.read_text()[-20000:],
        )

    def stop(self) -> None:
        """SIGTERM this server (only this PID) and reap it; SIGKILL if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@contextlib.contextmanager
def running_server(
    tmp_path: Path, workers: int = 2, front_end: str = "gunicorn", **env: str
) -> Iterator[Server]:
    """Run ``python -m inference_server`` on a free 127.0.0.1 port until the block ends."""
    port = free_port()
    log = tmp_path / f"server-{port}.log"
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("INFERENCE_")},
        "WEB_CONCURRENCY": str(workers),
        "INFERENCE_BIND": f"127.0.0.1:{port}",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / f"metrics-{port}"),
        "INFERENCE_HTTP_SERVER": front_end,
        **env,
    }
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "inference_server"],
            env=environment,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    server = Server(process, port, log, front_end)
    try:
        server.wait_ready(workers)
        yield server
    finally:
        server.stop()


def gunicorn_only(server: Server | str, reason: str) -> None:
    """Skip the calling test under Granian, printing ``reason`` (what only Gunicorn does)."""
    front_end = server if isinstance(server, str) else server.front_end
    if front_end != "gunicorn":
        pytest.skip(f"Gunicorn only: {reason}")
