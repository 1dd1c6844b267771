"""`promtool check metrics` on the /metrics of a real Gunicorn server (multiprocess mode).

promtool comes from $PROMTOOL (`nox -s tests` builds it from the Go module proxy) or PATH.
Without it the test skips with a message; in CI (CI=true) it fails instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from .conftest import SETOSA, VIRGINICA
from .live import Server, get, running_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(scope="module")
def promtool() -> str:
    """The promtool binary, or a skip (a failure in CI) saying how to get one."""
    found = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if found and Path(found).is_file():
        return found
    message = (
        "promtool not found: run `nox -s tests` (it builds promtool with Go), "
        "or set PROMTOOL=/path/to/promtool"
    )
    if IN_CI:
        pytest.fail(f"CI=true: {message}")
    pytest.skip(message)
    raise AssertionError  # unreachable


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with two workers, so /metrics aggregates several processes' files."""
    with running_server(tmp_path_factory.mktemp("promtool")) as live:
        yield live


def test_live_metrics_pass_promtool_check_metrics(server: Server, promtool: str) -> None:
    """After traffic on every kind of route, the exposition passes promtool's linter."""
    for _ in range(4):  # new connections: both workers write samples
        requests.post(f"{server.url}/predict", json={"instances": [SETOSA, VIRGINICA]}, timeout=10)
        requests.post(f"{server.url}/predict", json={"features": "x"}, timeout=10)
        requests.get(f"{server.url}/nowhere", timeout=10)
    status, body = get(f"{server.url}/metrics")
    assert status == 200
    text = body.decode()
    for family in ("inference_request_duration_seconds", "inference_predictions_total"):
        assert f"# TYPE {family.removesuffix('_total')}" in text
    result = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, timeout=60, check=False
    )
    report = (result.stdout + result.stderr).decode()
    print(f"promtool check metrics on {len(text.splitlines())} lines: {report or 'no findings'}")
    assert result.returncode == 0, report
    assert not report.strip(), report  # lint findings are printed even with exit status 0
