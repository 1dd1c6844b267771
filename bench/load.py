"""The load generators: wrk for closed-loop throughput, vegeta for fixed-rate latency.

Closed loop (wrk, N connections, each sends its next request when the answer is in) measures
throughput, but it hides queueing: a stalled server also stops the load. Open loop (vegeta,
requests sent at a fixed rate whatever the answers) shows the latency a client at that rate
sees, queueing included. Every run is bounded in time and targets 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from servers import BenchError, Server
from workloads import BINARY_HEADER, Workload

BENCH = Path(__file__).resolve().parent
LUA = BENCH / "post.lua"
# The vegeta version the bench builds from the Go module proxy (`go install`), cached.
VEGETA_MODULE = "github.com/tsenart/vegeta/v12"
VEGETA_VERSION = "v12.13.0"


def run_wrk(
    url: str, body: Path, seconds: float, args: argparse.Namespace, workload: Workload
) -> dict[str, Any]:
    """One bounded wrk run; returns its summary line (see post.lua)."""
    duration = max(1, round(seconds))
    headers = [
        arg for name, value in workload.headers.items() for arg in ("-H", f"{name}: {value}")
    ]
    cmd = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{duration}s",
        "--latency",
        "--timeout",
        "5s",
        *headers,
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


def wrk_version() -> str:
    """Wrk's version line."""
    result = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)  # noqa: S607
    first = (result.stdout or result.stderr).strip().splitlines()
    return first[0].split(" [")[0] if first else "?"


def post(server: Server, workload: Workload) -> tuple[dict[str, str], bytes]:
    """One request of `workload`: the answer's headers and body (HTTPError for non-2xx)."""
    request = urllib.request.Request(  # noqa: S310 - 127.0.0.1 only
        server.url(workload.path), data=workload.body, headers=workload.headers
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return dict(response.headers), response.read()


def check_answers(server: Server, workloads: dict[str, Workload]) -> dict[str, str]:
    """One request per workload before the load: it must be 2xx JSON of the right size."""
    answers = {}
    for key in (k for k in server.workloads if k in workloads):
        workload = workloads[key]
        try:
            headers, body = post(server, workload)
        except urllib.error.HTTPError as error:
            raise BenchError(
                f"{server.key} {workload.path}: HTTP {error.code} {error.read()[:300]!r}"
            ) from error
        # Header names are case-insensitive; Granian sends them in lower case.
        length = {name.lower(): value for name, value in headers.items()}.get(BINARY_HEADER.lower())
        document = json.loads(body[: int(length)] if length else body)
        if server.key != "ceiling" and workload.rows > 1:
            if "outputs" in document:  # V2: the predict output's shape
                count = document["outputs"][0]["shape"][0]
            else:
                count = len(document.get("predictions") or [])
            if count != workload.rows:
                raise BenchError(f"{server.key} batch answer is not {workload.rows} predictions")
        answers[key] = json.dumps(document)[:160]
    return answers


def find_vegeta(explicit: str | None) -> str | None:
    """The vegeta binary: `--vegeta`, else on PATH; None when there is none."""
    if explicit:
        return explicit if Path(explicit).is_file() else None
    return shutil.which("vegeta")


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(1, -(-round(fraction * len(ordered) * 1000) // 1000))  # ceil, float-safe
    return ordered[min(rank, len(ordered)) - 1]


def run_vegeta(  # noqa: PLR0917 - one attack, described in full
    vegeta: str,
    server: Server,
    workload: Workload,
    body: Path,
    rate: int,
    seconds: float,
    scratch: Path,
) -> dict[str, Any]:
    """`rate` requests/s for `seconds`, whatever the answers; every request's latency.

    vegeta keeps the rate by opening more connections when answers are late (up to
    `-max-workers`), so a server that stalls is charged the time its requests waited.
    """
    targets = scratch / f"targets-{server.key}-{workload.key}.txt"
    lines = [f"POST {server.url(workload.path)}"]
    lines += [f"{name}: {value}" for name, value in workload.headers.items()]
    targets.write_text("\n".join([*lines, f"@{body}", ""]))
    results = scratch / f"vegeta-{server.key}-{rate}.bin"
    attack = [
        vegeta,
        "attack",
        f"-targets={targets}",
        f"-rate={rate}/s",
        f"-duration={max(1, round(seconds))}s",
        "-timeout=5s",
        "-max-workers=256",
        f"-output={results}",
    ]
    try:
        subprocess.run(attack, check=True, capture_output=True, timeout=seconds + 30)  # noqa: S603
        encoded = subprocess.run(  # noqa: S603
            [vegeta, "encode", "-to=csv", str(results)],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        raise BenchError(f"vegeta failed: {error}") from error
    latencies: list[float] = []
    failures = 0
    for row in csv.reader(encoded.splitlines()):
        # timestamp, code, latency (ns), bytes out, bytes in, error, body, attack, seq, ...
        code, latency_ns, error_text = int(row[1]), int(row[2]), row[5]
        if not 200 <= code < 300 or error_text:
            failures += 1
        latencies.append(latency_ns / 1e6)
    return {
        "server": server.key,
        "workload": workload.key,
        "rate": rate,
        "requests": len(latencies),
        "failures": failures,
        "latencies_ms": latencies,
    }
