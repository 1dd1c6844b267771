"""Where a worker's time goes: py-spy samples the shipped server's workers under wrk load.

    python bench/profile_worker.py --workload predict --seconds 10
    nox -s bench -- --profile predict

The server runs exactly as shipped (``inference-server``), one workload is driven by wrk
(1 thread, 16 connections, bounded), and py-spy records every worker from outside (no code
change, ``--nonblocking`` so the worker is not paused). The collapsed stacks are summed
into inclusive and self time per function and per area (Gunicorn, Werkzeug, Flask, JSON,
validation, NumPy, metrics, logging...). Output: bench/results/profile-<workload>.txt.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import check_answers, run_wrk
from servers import BENCH, loadavg, make_server, prepare
from workloads import WORKLOAD_LABELS, make_workloads

# First matching (substring of file path or function) wins; checked against each frame.
AREAS = [
    ("metrics (prometheus_client)", ("prometheus_client",)),
    ("logging", ("/logging/", "inference_server/http/logs.py")),
    (
        "JSON decode",
        ("json/decoder.py", "json/__init__.py", "strictjson.py:decode", "_unique_keys"),
    ),
    ("JSON encode (orjson)", ("strictjson.py:dumps", "orjson")),
    ("request body read", ("bodies.py:read", "gunicorn/http/body.py")),
    ("validation (iris_model.validation)", ("iris_model/validation.py",)),
    ("scoring (iris_model.scoring)", ("iris_model/scoring.py",)),
    ("numpy", ("numpy/",)),
    ("server handlers (inference_server)", ("inference_server/",)),
    ("Flask", ("flask/",)),
    ("Werkzeug", ("werkzeug/",)),
    ("Gunicorn", ("gunicorn/",)),
]


SAMPLING = {True: "thread holding the GIL (Python CPU time)", False: "all active threads"}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", choices=sorted(WORKLOAD_LABELS), default="predict")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--start-timeout", type=float, default=90.0)
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument(
        "--no-gil",
        dest="gil",
        action="store_false",
        help="sample every active thread (wall time, incl. waiting for the GIL) instead of"
        " only the thread holding the GIL (CPU time in Python, the default)",
    )
    parser.add_argument("--output-dir", type=Path, default=BENCH / "results")
    return parser.parse_args(argv)


def frame_key(frame: str) -> str:
    """'function (path/to/file.py:123)' -> 'function (file.py)' grouped per function."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    short = "/".join(path.split("/")[-2:])
    return f"{name} ({short})"


def area_of(frame: str) -> str | None:
    """The area a frame belongs to, or None."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    probe = f"{path}:{name}"
    for area, needles in AREAS:
        if any(needle in probe for needle in needles):
            return area
    return None


def summarise(collapsed: list[tuple[list[str], int]], top: int) -> str:
    """Inclusive and self time per function, and self time per area."""
    total = sum(count for _, count in collapsed) or 1
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    areas: collections.Counter[str] = collections.Counter()
    for frames, count in collapsed:
        for key in {frame_key(f) for f in frames}:
            inclusive[key] += count
        own[frame_key(frames[-1])] += count
        # Attribute the sample to the innermost frame that belongs to a known area, so
        # that e.g. time in json's C scanner under strictjson.decode counts as "JSON decode".
        area = next((a for a in map(area_of, reversed(frames)) if a is not None), "other")
        areas[area] += count
    lines = [f"samples: {total} (active threads only)", "", "## Self time by area", ""]
    lines += [f"{100 * n / total:6.1f}%  {area}" for area, n in areas.most_common()]
    lines += ["", f"## Inclusive time, top {top} functions", ""]
    lines += [f"{100 * n / total:6.1f}%  {key}" for key, n in inclusive.most_common(top)]
    lines += ["", f"## Self time, top {top} functions", ""]
    lines += [f"{100 * n / total:6.1f}%  {key}" for key, n in own.most_common(top)]
    return "\n".join(lines)


def read_collapsed(paths: list[Path]) -> list[tuple[list[str], int]]:
    """py-spy's raw (collapsed) output: 'frame;frame;frame count' per line."""
    stacks = []
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if stack and count.isdigit():
                frames = [f for f in stack.split(";") if not f.startswith("process ")]
                frames = [f for f in frames if not f.startswith("thread ")]
                if frames:
                    stacks.append((frames, int(count)))
    return stacks


def main(argv: Sequence[str] | None = None) -> int:
    """Profile one workload; print and write the summary."""
    args = parse_args(argv)
    pyspy = Path(sys.executable).parent / "py-spy"
    if not pyspy.exists():
        print("py-spy is missing (pip install py-spy)", file=sys.stderr)
        return 2
    workloads = make_workloads()
    workload = workloads[args.workload]
    extra_env = dict(item.split("=", 1) for item in args.env)
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        setup = prepare(Path(tmp), {workload.key: workload}, extra_env)
        if setup.server_argv is None:
            return 2
        server = make_server(setup, "server")
        outputs: list[Path] = []
        try:
            server.start()
            server.wait_ready(args.start_timeout)
            check_answers(server, {workload.key: workload})
            url = server.url(workload.path)
            run_wrk(url, setup.bodies[workload.key], 1, args, workload)  # warm-up
            workers = server.pids()[1:]
            spies = []
            for pid in workers:
                outputs.append(Path(tmp) / f"spy-{pid}.txt")
                spies.append(
                    subprocess.Popen(  # noqa: S603 - our py-spy on our own worker
                        [
                            str(pyspy),
                            "record",
                            "--pid",
                            str(pid),
                            "--duration",
                            str(args.seconds + 1),
                            "--rate",
                            str(args.rate),
                            "--format",
                            "raw",
                            "--nonblocking",
                            *(["--gil"] if args.gil else []),
                            "--output",
                            str(outputs[-1]),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
            load = run_wrk(url, setup.bodies[workload.key], args.seconds, args, workload)
            for spy in spies:
                try:
                    spy.wait(timeout=args.seconds + 30)
                except subprocess.TimeoutExpired:
                    spy.kill()
                    spy.wait(timeout=10)
        finally:
            server.stop()
        rps = load["requests"] / (load["duration_us"] / 1e6)
        header = (
            f"# py-spy profile: {WORKLOAD_LABELS[workload.key]} on inference-server "
            f"(as shipped{', ' + str(extra_env) if extra_env else ''})\n\n"
            f"sampling: {SAMPLING[args.gil]}\n"
            f"{len(workers)} workers, wrk {args.threads} thread / {args.connections} connections,"
            f" {args.seconds} s at {rps:,.0f} req/s (slowed by sampling), "
            f"load {loadavg()}\n"
        )
        text = header + "\n" + summarise(read_collapsed(outputs), args.top) + "\n"
    args.output_dir.mkdir(parents=True, exist_ok=True)
    target = args.output_dir / f"profile-{workload.key}.txt"
    target.write_text(text)
    print(text)
    print(f"== written: {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
