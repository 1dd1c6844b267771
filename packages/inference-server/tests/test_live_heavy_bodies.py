"""Worst-case JSON bodies against a real server (each front end): answered 4xx, /healthz fast.

Bounded: four clients, a fixed number of bodies each; only the server started here is stopped.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from .live import FRONT_ENDS, Server, get, running_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

MIB = 1024 * 1024
ROUNDS = 15  # bodies per client


def _fill(item: bytes, prefix: bytes, suffix: bytes, size: int = MIB) -> bytes:
    return (
        prefix
        + b",".join([item] * ((size - len(prefix) - len(suffix)) // (len(item) + 1)))
        + suffix
    )


WORST = {
    "/predict": _fill(b"{}", b'{"instances":[', b"]}"),
    "/v1/models/iris:predict": _fill(b"[]", b'{"instances":[', b"]}"),
    "/v2/models/iris/infer": b"{" + b",".join(b'"k%d":0' % i for i in range(90_000)) + b"}",
}


@pytest.fixture(scope="module", params=FRONT_ENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """Two workers, the shipped defaults otherwise."""
    with running_server(tmp_path_factory.mktemp("heavy"), front_end=request.param) as live:
        yield live


def test_healthz_answers_within_a_second_while_clients_send_worst_case_bodies(
    server: Server,
) -> None:
    statuses: list[int] = []
    failures: list[BaseException] = []

    def attack(path: str, body: bytes) -> None:
        with requests.Session() as session:
            for _ in range(ROUNDS):
                try:
                    response = session.post(
                        server.url + path,
                        data=body,
                        headers={"Content-Type": "application/json"},
                        timeout=30,
                    )
                    statuses.append(response.status_code)
                except requests.RequestException as error:
                    failures.append(error)

    clients = [
        threading.Thread(target=attack, args=item) for item in [*WORST.items(), *WORST.items()][:4]
    ]
    for client in clients:
        client.start()
    probes = []
    try:
        while any(client.is_alive() for client in clients) and len(probes) < 200:
            probes.append(get(f"{server.url}/healthz", timeout=1.0)[0])
    finally:
        for client in clients:
            client.join(timeout=120)
    assert not failures
    assert len(statuses) == 4 * ROUNDS
    assert set(statuses) <= {400, 413}, statuses
    assert probes
    assert set(probes) == {200}


def test_worst_case_bodies_name_the_bound(server: Server) -> None:
    for path, body in WORST.items():
        response = requests.post(
            server.url + path, data=body, headers={"Content-Type": "application/json"}, timeout=30
        )
        assert response.status_code in (400, 413)
        assert "JSON" in response.json()["error"]


def test_log_has_no_traceback(server: Server) -> None:
    assert "Traceback" not in Path(server.log).read_text()
