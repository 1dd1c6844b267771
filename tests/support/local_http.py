"""Free ports on 127.0.0.1 and waiting for a local HTTP server: shared by every test tree.

The server's live tests, the integration suites and the bench all start servers on this
machine; they take their ports and their readiness loop from here. Root pyproject's pytest
``pythonpath`` puts this folder on ``sys.path``; scripts outside pytest (bench/) insert it.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable

HOST = "127.0.0.1"


class ServerExitedError(RuntimeError):
    """The server process ended while we waited for it to become ready."""


def free_port(host: str = HOST) -> int:
    """A TCP port that was free on ``host`` a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """GET ``url``: status and body, for HTTP errors too (connection errors raise OSError)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_for_http(
    url: str,
    *,
    timeout: float,
    status: int = 200,
    process: subprocess.Popen[bytes] | None = None,
    condition: Callable[[], bool] = lambda: True,
    describe: Callable[[], str] = lambda: "",
    interval: float = 0.25,
) -> None:
    """Poll GET ``url`` until it answers ``status`` while ``condition()`` holds.

    Raises:
        ServerExitedError: ``process`` ended first.
        TimeoutError: not ready within ``timeout`` seconds.
        Both messages end with ``describe()`` (e.g. the tail of the server's log).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            message = f"{url}: the server exited with {process.returncode} before it was ready"
            raise ServerExitedError(f"{message}\n{describe()}".rstrip())
        with contextlib.suppress(OSError):
            if condition() and http_get(url, timeout=min(2.0, timeout))[0] == status:
                return
        time.sleep(interval)
    raise TimeoutError(f"{url}: not {status} within {timeout:.0f} s\n{describe()}".rstrip())
