"""Worker memory before, during and after clients that stall near the end of large bodies.

    python bench/stalled_uploads.py [--clients 400] [--size 1048576] [--rounds 2]
                                    [--servers server,server_off_mallopt]

Starts the shipped server (``inference-server``, two workers, shipped settings) on
127.0.0.1, records each worker's RSS, then opens ``--clients`` connections that each send
headers for a ``--size``-byte /predict body and all of it but the last byte, and wait. The
server answers each 408 (body deadline) or 503 (in-flight budget) and closes. RSS is read
while they wait and again once every connection is closed; a second round shows whether the
memory is reused. ``--servers server,server_off_mallopt`` runs the same rounds on the shipped
server, then on it without the mallopt of ``inference_server.http.gunicorn`` (the on/off row
of that trick, whose claim is memory, not speed). Bounded: the clients, their bytes and the
waits are fixed; nothing but 127.0.0.1 and the servers started here is touched.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import APPS, Server, clean_env, free_port


def worker_rss_mb(pids: list[int]) -> list[float]:
    """RSS of each worker, MB."""
    return [round(psutil.Process(pid).memory_info().rss / 1e6, 1) for pid in pids]


def attack(port: int, clients: int, size: int) -> list[socket.socket]:
    """Open ``clients`` connections, each stalled one byte short of a ``size``-byte body."""
    head = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    head += b"Content-Length: %d\r\n\r\n" % size
    body = b" " * (size - 1)
    stalled = []
    for _ in range(clients):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            sock.send(head + body)  # what the kernel takes now; the rest is never sent
        stalled.append(sock)
    return stalled


def main() -> int:
    """Run the rounds and print RSS per worker at each step."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=400)
    parser.add_argument("--size", type=int, default=1024 * 1024)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--start-timeout", type=float, default=120.0)
    parser.add_argument("--hold", type=float, default=3.0, help="seconds the clients wait")
    parser.add_argument("--servers", default="server", help="server and/or server_off_mallopt")
    args = parser.parse_args()
    for key in args.servers.split(","):
        run(key.strip(), args)
    return 0


def run(key: str, args: argparse.Namespace) -> None:
    """The rounds against one server: ``server`` as shipped or ``server_off_mallopt``."""
    port = free_port()
    print(f"== {key}")
    with tempfile.TemporaryDirectory(prefix="bench-stalled-") as tmp:
        scratch = Path(tmp)
        (scratch / "prometheus").mkdir()
        env = clean_env(
            dict(item.split("=", 1) for item in args.env)
            | {
                "INFERENCE_BIND": f"127.0.0.1:{port}",
                "INFERENCE_LOG_REQUESTS": "false",
                "PROMETHEUS_MULTIPROC_DIR": str(scratch / "prometheus"),
            }
        )
        argv = [sys.executable, "-m", "inference_server"]
        if key == "server_off_mallopt":
            env["BENCH_OFF"] = "mallopt"
            env["PYTHONPATH"] = str(APPS)
            argv = [sys.executable, "-m", "gunicorn", "-c", "python:tricks_off_conf"]
            argv.append("tricks_off:create()")
        server = Server(key, argv, env, port, scratch / "server.log", ("predict",))
        try:
            server.start()
            server.wait_ready(args.start_timeout)
            pids = server.pids()[1:]  # the workers
            print(f"workers {pids}: RSS before {worker_rss_mb(pids)} MB")
            for round_ in range(1, args.rounds + 1):
                stalled = attack(port, args.clients, args.size)
                time.sleep(args.hold)
                during = worker_rss_mb(pids)
                for sock in stalled:
                    sock.close()
                time.sleep(2)
                print(
                    f"round {round_}: {args.clients} clients x {args.size:,} bytes:"
                    f" RSS during {during} MB, after {worker_rss_mb(pids)} MB"
                )
        finally:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
