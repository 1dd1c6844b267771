"""A real Gunicorn master picks up a rotated token Secret without a restart (127.0.0.1 only).

Bounded: one server of two workers, 80 requests, a few seconds.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from .conftest import SETOSA, SecretVolume
from .live import FRONT_ENDS, running_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

WORKERS = 2
REQUESTS = 20


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_every_worker_takes_the_rotated_tokens(tmp_path: Path, front_end: str) -> None:
    """After a ``..data`` swap and one check interval, every worker takes the new token only."""
    volume = SecretVolume(tmp_path / "secret")
    volume.root.mkdir()
    volume.write("old-live-token\n")
    env = {"INFERENCE_AUTH_TOKENS_FILE": str(volume.path)}
    with running_server(tmp_path, workers=WORKERS, front_end=front_end, **env) as server:

        def statuses(token: str) -> set[int]:
            # A new connection per request, so the workers share them out.
            return {
                requests.post(
                    f"{server.url}/predict",
                    json={"features": SETOSA},
                    headers={"Authorization": f"Bearer {token}", "Connection": "close"},
                    timeout=10,
                ).status_code
                for _ in range(REQUESTS)
            }

        assert statuses("old-live-token") == {200}
        assert statuses("new-live-token") == {401}
        volume.write("new-live-token\nspare-live-token\n")
        time.sleep(1.2)  # > the check interval: each worker's next request stats the file
        assert statuses("new-live-token") == {200}
        assert statuses("old-live-token") == {401}
    log = server.log.read_text()
    reloads = log.count("auth tokens reloaded from")
    assert 1 <= reloads <= WORKERS, log[-5000:]  # once per worker that saw the change
    assert "2 token(s) in the file" in log
    assert "live-token" not in log.replace(str(volume.path), "")
