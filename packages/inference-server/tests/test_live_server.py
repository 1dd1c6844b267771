"""A real Gunicorn master on 127.0.0.1: protocols, slow clients, crashes and draining.

Every loop is bounded in count and time; only processes started here are signalled, by PID.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
import tritonclient.http as httpclient

from .conftest import SETOSA, VIRGINICA
from .live import FRONT_ENDS, Server, get, running_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module", params=FRONT_ENDS)
def front_end(request: pytest.FixtureRequest) -> str:
    """Each front end in turn (``INFERENCE_HTTP_SERVER``)."""
    return str(request.param)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, front_end: str) -> Iterator[Server]:
    """One shared server with two workers, per front end."""
    with running_server(tmp_path_factory.mktemp("live"), front_end=front_end) as live:
        yield live


# --- The seed's own two tests, unchanged in substance, against the running server. ---


def test_health(server: Server) -> None:
    """GET / answers OK."""
    response = requests.get(f"{server.url}/", timeout=10)
    assert response.status_code == 200
    assert response.text == "OK"


def test_predict(server: Server) -> None:
    """POST /predict returns an integer prediction."""
    response = requests.post(f"{server.url}/predict", json={"features": SETOSA}, timeout=10)
    assert response.status_code == 200
    assert isinstance(response.json()["prediction"], int)


# --- Process model ---


def test_console_process_is_the_master(server: Server) -> None:
    """The started process is the master (same PID): its children are the two workers."""
    assert len(server.workers()) == 2
    log = server.log.read_text()
    if server.front_end == "granian":
        assert f"Starting granian (main PID: {server.process.pid})" in log
        assert f"Listening at: {server.url}" in log
        assert "Granian has no request-body read timeout" in log  # the start-up warning
    else:
        assert f"({server.process.pid})" in log  # "Listening at: ... (master pid)"
        assert "Using worker: inference_server.http.worker.FairGeventWorker" in log


def _listening_sockets(port: int) -> int:
    """How many sockets listen on 127.0.0.1:``port`` (/proc/net/tcp, state 0A)."""
    local = f"0100007F:{port:04X}"
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for row in rows if row.split()[1] == local and row.split()[3] == "0A")


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads /proc/net/tcp (Linux)")
def test_each_worker_listens_on_its_own_socket(server: Server) -> None:
    """One listening socket per worker (SO_REUSEPORT), so the kernel spreads connections."""
    assert _listening_sockets(server.port) == 2


def test_access_log_is_json_lines(server: Server) -> None:
    """Each request writes one JSON line with the request id."""
    requests.get(f"{server.url}/healthz", headers={"X-Request-ID": "live-test-1"}, timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [line for line in server.log.read_text().splitlines() if "live-test-1" in line]
        if lines:
            break
        time.sleep(0.1)
    assert json.loads(lines[0])["path"] == "/healthz"


def test_metrics_add_up_across_workers(server: Server) -> None:
    """Multiprocess metrics: predictions served by either worker all appear in /metrics."""

    def predicted(cls: str) -> float:
        text = get(f"{server.url}/metrics")[1].decode()
        prefix = f'inference_predictions_total{{class_name="{cls}"}} '
        return sum(
            float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix)
        )

    before = predicted("virginica")
    for _ in range(20):  # new connection each time: both workers take some
        requests.post(f"{server.url}/predict", json={"features": VIRGINICA}, timeout=10)
    assert predicted("virginica") - before == 20


# --- Open Inference Protocol with a real client ---


def test_tritonclient_metadata_and_inference(server: Server) -> None:
    """Tritonclient (pure JSON, binary_data=False) reads metadata and gets predictions."""
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{server.port}")
    try:
        assert client.is_server_live()
        assert client.is_server_ready()
        assert client.is_model_ready("iris")
        metadata = client.get_model_metadata("iris")
        assert metadata["inputs"][0]["shape"] == [-1, 4]
        rows = np.array([SETOSA, VIRGINICA], dtype=np.float32)
        tensor = httpclient.InferInput("input-0", list(rows.shape), "FP32")
        tensor.set_data_from_numpy(rows, binary_data=False)
        outputs = [
            httpclient.InferRequestedOutput("predict", binary_data=False),
            httpclient.InferRequestedOutput("predict_proba", binary_data=False),
        ]
        result = client.infer("iris", [tensor], outputs=outputs, request_id="7")
        assert result.as_numpy("predict").tolist() == [0, 2]
        proba = result.as_numpy("predict_proba")
        assert proba.shape == (2, 3)
        assert np.allclose(proba.sum(axis=1), 1.0)
        assert result.get_response()["id"] == "7"
    finally:
        client.close()


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["FP32", "FP64"])
def test_tritonclient_default_binary_mode(server: Server, dtype: type) -> None:
    """Tritonclient with default arguments (binary tensors both ways) gets classes and proba."""
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{server.port}")
    try:
        assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
        rows = np.array([SETOSA, VIRGINICA], dtype=dtype)
        datatype = "FP32" if dtype is np.float32 else "FP64"
        tensor = httpclient.InferInput("input-0", list(rows.shape), datatype)
        tensor.set_data_from_numpy(rows)
        result = client.infer("iris", [tensor])
        assert result.as_numpy("predict").tolist() == [0, 2]
        outputs = [
            httpclient.InferRequestedOutput("predict"),
            httpclient.InferRequestedOutput("predict_proba"),
        ]
        result = client.infer("iris", [tensor], outputs=outputs)
        size = 2 * 3 * np.dtype(dtype).itemsize  # probabilities come in the input's datatype
        assert result.get_output("predict_proba")["parameters"]["binary_data_size"] == size
        assert result.as_numpy("predict_proba").dtype == dtype
        assert result.as_numpy("predict").tolist() == [0, 2]
        proba = result.as_numpy("predict_proba")
        assert proba.shape == (2, 3)
        assert proba.argmax(axis=1).tolist() == [0, 2]
        assert np.allclose(proba.sum(axis=1), 1.0)
    finally:
        client.close()


# --- Slow clients ---


def test_slow_clients_do_not_block_health(server: Server) -> None:
    """Forty connections trickling partial headers leave /healthz answering quickly."""
    slow: list[socket.socket] = []
    try:
        for _ in range(40):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")
            slow.append(sock)
        for round_ in range(3):
            for sock in slow:
                sock.sendall(f"X-Slow-{round_}: 1\r\n".encode())
            started = time.monotonic()
            status, _ = get(f"{server.url}/healthz", timeout=5)
            assert status == 200
            assert time.monotonic() - started < 2.0
            time.sleep(0.5)
    finally:
        for sock in slow:
            sock.close()


# --- Fairness between keep-alive connections ---


def _responses_waiting(sock: socket.socket) -> int:
    """How many complete HTTP responses the server has already sent on ``sock``."""
    sock.setblocking(False)
    data = b""
    try:
        while chunk := sock.recv(1 << 20):
            data += chunk
    except BlockingIOError:
        pass
    finally:
        sock.setblocking(True)
    return data.count(b"HTTP/1.1 200")


def test_one_busy_connection_does_not_starve_another(tmp_path: Path, front_end: str) -> None:
    """A connection with 200 requests queued is not served to the end before another's one.

    One worker, so both connections share it. Gunicorn's stock gevent worker keeps reading
    a connection as long as its next request is buffered, so the single request waits for
    all 200; the shipped worker yields after each answer and serves them in turn.
    """
    body = json.dumps({"features": [5.1, 3.5, 1.4, 0.2]}).encode()
    request = (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    with running_server(tmp_path, workers=1, front_end=front_end) as live:
        busy = socket.create_connection(("127.0.0.1", live.port), timeout=30)
        other = socket.create_connection(("127.0.0.1", live.port), timeout=30)
        try:
            busy.sendall(request * 200)
            other.sendall(request)
            answer = b""
            while b"\r\n\r\n" not in answer:
                answer += other.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200")
            assert _responses_waiting(busy) < 100
        finally:
            busy.close()
            other.close()


# --- Crashes and shutdown (each with its own server) ---


def _load(url: str, stop: threading.Event, results: list[int | str]) -> None:
    """Send single-row predictions on fresh connections until ``stop`` (bounded by it)."""
    while not stop.is_set():
        try:
            response = requests.post(url, json={"features": SETOSA}, timeout=10)
            results.append(response.status_code)
        except requests.RequestException as error:
            results.append(f"{type(error).__name__}: {error}"[:160])


def test_killed_worker_is_replaced_under_load(tmp_path: Path, front_end: str) -> None:
    """Kill -9 of one worker fails only the requests it held or queued; it is replaced."""
    clients = 4
    with running_server(tmp_path, front_end=front_end) as live:
        stop = threading.Event()
        results: list[int | str] = []
        threads = [
            threading.Thread(target=_load, args=(f"{live.url}/predict", stop, results))
            for _ in range(clients)
        ]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        victim = live.workers()[0]
        os.kill(victim, signal.SIGKILL)
        time.sleep(2.0)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        failures = [r for r in results if r != 200]
        assert len(results) > 20
        # Each worker listens on its own socket (SO_REUSEPORT; Granian's too): a client loses
        # the request the victim held and, at most, one reconnect that the kernel queued on
        # the victim's socket while the process was torn down. 5 of 4 clients' requests
        # failed in some runs, under both front ends: the bound allows one more per client.
        assert len(failures) <= 2 * clients, failures
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            workers = live.workers()
            if len(workers) == 2 and victim not in workers:
                break
            time.sleep(0.25)
        assert len(live.workers()) == 2
        assert victim not in live.workers()
        live.wait_ready(n_workers=3)  # the replacement trained its model too
        assert get(f"{live.url}/readyz")[0] == 200


def _partial_request(port: int) -> tuple[socket.socket, bytes]:
    """Send headers and the first bytes of a body; return the socket and the rest."""
    body = json.dumps({"features": VIRGINICA}).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = (
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    sock.sendall(head + body[:10])
    return sock, body[10:]


def test_sigterm_finishes_in_flight_requests(tmp_path: Path, front_end: str) -> None:
    """SIGTERM: readiness 503 at once, in-flight requests finish, the master exits in time.

    Requests whose bodies are still arriving when SIGTERM lands complete with 200.
    """
    graceful = 20
    with running_server(
        tmp_path, front_end=front_end, INFERENCE_GRACEFUL_TIMEOUT=str(graceful)
    ) as live:
        probe = http.client.HTTPConnection("127.0.0.1", live.port, timeout=10)
        probe.request("GET", "/readyz")
        first = probe.getresponse()
        assert (first.status, first.read()) == (200, b'{"status":"ready"}')
        in_flight = [_partial_request(live.port) for _ in range(4)]
        time.sleep(1.0)  # the workers have accepted them and wait for the bodies
        started = time.monotonic()
        live.process.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        if front_end == "granian":
            # Granian's drain closes idle keep-alive connections at once (and stops
            # accepting): the probe fails either way, by a closed connection or a 503.
            try:
                probe.request("GET", "/readyz")
                assert probe.getresponse().status == 503
            except ConnectionError:  # http.client.RemoteDisconnected is one
                pass
        else:
            probe.request("GET", "/readyz")  # the kept-alive connection is still served
            draining = probe.getresponse()
            assert draining.status == 503
            assert json.loads(draining.read()) == {"error": "not ready: shutting down"}
        probe.close()
        answers = []
        for sock, rest in in_flight:
            with sock:
                sock.sendall(rest)
                response = http.client.HTTPResponse(sock)
                response.begin()
                answers.append((response.status, json.loads(response.read())))
        live.process.wait(timeout=graceful + 10)
        elapsed = time.monotonic() - started
    assert answers == [(200, {"prediction": 2, "label": "virginica"})] * 4
    assert elapsed < graceful
    assert live.process.returncode == 0


def test_unverifiable_model_stops_the_server(tmp_path: Path, front_end: str) -> None:
    """A configured model directory that fails verification stops the server with a clear log."""
    absent = str(tmp_path / "absent")
    with (
        pytest.raises(RuntimeError, match="refusing to serve the model") as error,
        running_server(tmp_path, front_end=front_end, INFERENCE_MODEL_DIR=absent),
    ):
        pass  # pragma: no cover - the server must not become ready
    stopped = {"gunicorn": "Worker failed to boot", "granian": "Worker crash loop detected"}
    assert stopped[front_end] in str(error.value)
