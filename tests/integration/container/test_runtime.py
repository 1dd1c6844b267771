"""What the running container does: user, filesystem, health check, model, shutdown."""

from __future__ import annotations

import json
import socket
import time
from typing import TYPE_CHECKING

import pytest
from testcontainers.core.wait_strategies import HealthcheckWaitStrategy

if TYPE_CHECKING:
    from conftest import Server, ServerFactory

pytestmark = pytest.mark.container

# Debian's sticky world-writable directories; the app itself only writes to /tmp.
TEMP_DIRECTORIES = {"/tmp", "/var/tmp", "/run/lock", "/var/lock"}  # noqa: S108
GRACEFUL_TIMEOUT = 20  # INFERENCE_GRACEFUL_TIMEOUT's default; the k8s manifests rely on it

# Runs inside the container (no ps there): every process, its uid/gid, parent and command.
PROCESSES = """
import json, os
rows = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        status = dict(l.split(":", 1) for l in open(f"/proc/{pid}/status").read().splitlines())
        cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\\0", b" ").decode().strip()
    except OSError:
        continue
    rows.append({"pid": int(pid), "ppid": int(status["PPid"]), "uid": status["Uid"].split(),
                 "gid": status["Gid"].split(), "cmd": cmd})
print(json.dumps(rows))
"""

# Every directory on the root filesystem the current user may write to (find is C, fast).
WRITABLE = [
    "find", "/", "-xdev", "(", "-path", "/proc", "-o", "-path", "/sys", "-o", "-path", "/dev", ")",
    "-prune", "-o", "-type", "d", "-writable", "-print", "-prune",
]  # fmt: skip


def processes(server: Server) -> list[dict[str, object]]:
    code, output = server.exec("python", "-c", PROCESSES)
    assert code == 0, output
    rows: list[dict[str, object]] = json.loads(output)
    return [row for row in rows if "python -c" not in str(row["cmd"])]  # not this probe


@pytest.fixture(scope="module")
def tuned(start_server: ServerFactory) -> Server:
    """A container with the usual Docker defaults (writable root) and tuned settings."""
    return start_server(
        hardened=False,
        env={"WEB_CONCURRENCY": "1", "INFERENCE_THREADS": "2", "INFERENCE_MAX_ROWS": "3"},
    )


def test_gunicorn_master_is_pid_1_and_everything_runs_as_10001(server: Server) -> None:
    rows = processes(server)
    master = next(row for row in rows if row["pid"] == 1)
    assert "inference-server" in str(master["cmd"])  # exec form: no shell in between
    workers = [row for row in rows if row["ppid"] == 1]
    assert len(workers) == 2  # WEB_CONCURRENCY's default
    for row in rows:
        assert row["uid"] == ["10001"] * 4, row
        assert row["gid"] == ["10001"] * 4, row


def test_root_filesystem_is_read_only_and_tmp_is_writable(server: Server) -> None:
    code, mounts = server.exec("python", "-c", "print(open('/proc/self/mounts').read())")
    assert code == 0, mounts
    options = {line.split()[1]: line.split()[3].split(",") for line in mounts.splitlines() if line}
    assert "ro" in options["/"]
    assert "rw" in options["/tmp"]  # noqa: S108
    # Even root (the file's owner) cannot write: the filesystem refuses, not permissions.
    write = "open('/opt/model/model.joblib', 'ab')"
    code, output = server.exec("python", "-c", write, user="0")
    assert code != 0
    assert "Read-only file system" in output
    code, output = server.exec("python", "-c", "open('/tmp/probe', 'w').write('ok')")
    assert code == 0, output


def test_nothing_but_temp_directories_is_writable_by_the_app_user(tuned: Server) -> None:
    # Even without --read-only: the venv, the model and the system are root's.
    code, output = tuned.exec(*WRITABLE)
    # find exits 1 for directories it may not read (/root, ...): those are not writable either.
    assert code in {0, 1}, output
    writable = {line for line in output.splitlines() if line.startswith("/")}
    assert writable <= TEMP_DIRECTORIES, writable
    assert "/tmp" in writable  # noqa: S108


def test_environment_configures_the_server(tuned: Server) -> None:
    rows = processes(tuned)
    assert len([row for row in rows if row["ppid"] == 1]) == 1  # WEB_CONCURRENCY=1
    ok = tuned.post("/predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]] * 3})
    assert ok.status_code == 200
    too_many = tuned.post("/predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]] * 4})
    assert too_many.status_code == 413  # INFERENCE_MAX_ROWS=3
    assert isinstance(too_many.json()["error"], str)


def test_docker_healthcheck_turns_healthy(server: Server) -> None:
    # The image's own HEALTHCHECK (python + urllib against /readyz), first run after 10 s.
    HealthcheckWaitStrategy().with_startup_timeout(60).wait_until_ready(server.container)
    server.wrapped.reload()
    health = server.wrapped.attrs["State"]["Health"]
    assert health["Status"] == "healthy"
    assert health["Log"][-1]["ExitCode"] == 0


def test_model_inside_carries_a_valid_manifest(server: Server) -> None:
    code, output = server.exec("iris-model", "verify", "/opt/model")
    assert code == 0, output
    assert output.startswith("ok: /opt/model")

    code, output = server.exec("iris-model", "info", "/opt/model", "--json")
    assert code == 0, output
    manifest = json.loads(output)
    digest_script = (
        "import hashlib, pathlib; "
        "print(hashlib.sha256(pathlib.Path('/opt/model/model.joblib').read_bytes()).hexdigest())"
    )
    code, digest = server.exec("python", "-c", digest_script)
    assert code == 0, digest
    assert manifest["artifact"]["sha256"] == digest.strip()
    code, sklearn_version = server.exec(
        "python", "-c", "import importlib.metadata as m; print(m.version('scikit-learn'))"
    )
    assert manifest["versions"]["scikit-learn"] == sklearn_version.strip()  # trained in this venv
    assert manifest["metrics"]["accuracy"] >= 0.9
    assert len(manifest["feature_names"]) == 4
    # The server serves exactly this artifact.
    assert f'sha256="{manifest["artifact"]["sha256"]}"' in server.get("/metrics").text


def _start_slow_request(port: int, body: bytes, sent: int) -> socket.socket:
    """Open a connection and send a POST /predict whose body is only partly sent."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = (
        "POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    sock.sendall(head + body[:sent])
    return sock


def _finish(sock: socket.socket, body: bytes, sent: int) -> bytes:
    sock.sendall(body[sent:])
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    sock.close()
    return b"".join(chunks)


def test_sigterm_drains_requests_in_flight_and_exits_0(start_server: ServerFactory) -> None:
    server = start_server()
    body = json.dumps({"features": [6.3, 3.3, 6.0, 2.5]}).encode()
    half = len(body) // 2
    # 3 requests are in flight: accepted, headers parsed, body still arriving.
    in_flight = [_start_slow_request(server.port, body, half) for _ in range(3)]
    time.sleep(1.0)

    signalled = time.monotonic()
    server.wrapped.kill(signal="SIGTERM")
    time.sleep(1.5)  # well into the drain
    server.wrapped.reload()
    assert server.wrapped.status == "running", "exited before its requests finished"
    responses = [_finish(sock, body, half) for sock in in_flight]

    result = server.wrapped.wait(timeout=GRACEFUL_TIMEOUT + 10)
    elapsed = time.monotonic() - signalled
    logs = server.wrapped.logs().decode(errors="replace")
    for response in responses:
        head, _, payload = response.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), response[:300]
        assert json.loads(payload)["prediction"] == 2
    assert result["StatusCode"] == 0, logs[-3000:]
    assert elapsed < GRACEFUL_TIMEOUT, f"took {elapsed:.1f} s to stop"
    assert "Handling signal: term" in logs
    assert "Traceback" not in logs
