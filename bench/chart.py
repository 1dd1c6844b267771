"""The PNG of a bench run: the targets first, then the numbers behind them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib as mpl

mpl.use("Agg")  # headless: no display on CI or in containers

import matplotlib.pyplot as plt
from workloads import WORKLOAD_LABELS

COLORS = {"server": "#1f77b4", "server_auth": "#17becf", "ceiling": "#9e9e9e", "seed": "#ff7f0e"}
NAMES = {
    "server": "inference-server",
    "server_auth": "inference-server, auth on",
    "ceiling": "framework ceiling",
    "seed": "seed baseline",
}
PASS, FAIL = "#2ca02c", "#d62728"


def _targets(ax: Any, result: dict[str, Any]) -> None:
    """Each target as measured / required (the line at 1.0 is the requirement)."""
    records = result["targets"]
    labels, values, colors, notes = [], [], [], []
    for record in records:
        value, threshold = record["value"], record["threshold"]
        if value is None:
            score = 0.0
        elif record["op"] == ">=":
            score = value / threshold
        elif threshold == 0:  # error count: any error is a miss
            score = 1.0 if value == 0 else 0.5
        else:  # "<=": below the ceiling is good, so invert
            score = threshold / value if value > 0 else 2.0
        labels.append(record["target"])
        values.append(min(score, 2.5))
        colors.append(PASS if record["pass"] else FAIL)
        shown = (
            "n/a" if value is None else (f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}")
        )
        notes.append(f"{'PASS' if record['pass'] else 'FAIL'}  {shown}{record['unit']}")
    positions = range(len(labels))[::-1]
    ax.barh(list(positions), values, color=colors, height=0.6)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_yticks(list(positions), labels)
    for y, x, note in zip(positions, values, notes, strict=True):
        ax.text(x + 0.02, y, note, va="center", fontsize=9)
    ax.set_xlim(0, max([*values, 1.0]) * 1.35)
    ax.set_xlabel("measured / required (right of the line = target met)")
    ax.set_title("Targets (ratios from interleaved runs of the same bench)", loc="left")


def _throughput(ax: Any, result: dict[str, Any], workloads: list[str], rows: bool) -> None:
    """Grouped bars per workload, one bar per server, dots for each round."""
    table = result["table"]
    servers = [s for s in NAMES if s in table]
    width = 0.8 / max(len(servers), 1)
    metric = "rows_per_s" if rows else "rps"
    for i, server in enumerate(servers):
        for j, workload in enumerate(workloads):
            cell = table[server].get(workload)
            if cell is None:
                continue
            x = j + (i - (len(servers) - 1) / 2) * width
            ax.bar(
                x,
                cell[metric],
                width * 0.9,
                color=COLORS[server],
                label=NAMES[server] if j == 0 or not ax.get_legend_handles_labels()[1] else None,
            )
            per_round = [
                r[metric]
                for r in result["rounds"]
                if r["server"] == server and r["workload"] == workload
            ]
            ax.plot([x] * len(per_round), per_round, "k.", markersize=3)
            ax.text(x, cell[metric], f"{cell[metric]:,.0f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(workloads)), [_workload_label(w) for w in workloads])
    ax.set_ylabel("rows/s" if rows else "requests/s")
    ax.yaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(unique.values(), unique.keys(), fontsize=8, loc="upper right")


def _workload_label(key: str) -> str:
    return WORKLOAD_LABELS.get(key, key)


def _latency(ax: Any, result: dict[str, Any]) -> None:
    """p50 and p99 per server and workload (log scale)."""
    table = result["table"]
    labels, p50, p99, colors = [], [], [], []
    for server, name in NAMES.items():
        for workload, cell in table.get(server, {}).items():
            labels.append(f"{name}\n{_workload_label(workload)}")
            p50.append(cell["p50_ms"])
            p99.append(cell["p99_ms"])
            colors.append(COLORS[server])
    y = list(range(len(labels)))[::-1]
    ax.barh(y, p99, color=colors, alpha=0.35, label="p99")
    ax.barh(y, p50, color=colors, label="p50")
    for yy, a, b in zip(y, p50, p99, strict=True):
        ax.text(b, yy, f" {a:.1f} / {b:.1f} ms", va="center", fontsize=7)
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("latency, ms (dark p50, light p99; log scale)")
    ax.set_title("Latency at 16 connections", loc="left")


def _memory(ax: Any, result: dict[str, Any]) -> None:
    """Total PSS (and RSS, dashed) against the number of workers."""
    scaling = result["memory"]["scaling"]
    for server, points in scaling.items():
        workers = [p["workers"] for p in points]
        pss = [p["total_mb"]["pss"] for p in points]
        rss = [p["total_mb"]["rss"] for p in points]
        inc = result["memory"]["increments"][server]
        ax.plot(
            workers,
            pss,
            "o-",
            color=COLORS[server],
            label=f"{NAMES[server]} PSS (+{inc['pss'] or 0:.0f} MB/worker)",
        )
        ax.plot(
            workers,
            rss,
            "o--",
            color=COLORS[server],
            alpha=0.5,
            label=f"{NAMES[server]} RSS (+{inc['rss'] or 0:.0f} MB/worker)",
        )
    ax.set_xlabel("Gunicorn workers")
    ax.set_ylabel("MiB, master + workers")
    ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
    ax.legend(fontsize=7)
    ax.set_title("Memory (target: <= 60 MB PSS per extra worker)", loc="left")


SINGLE_ROW_WORKLOADS = ("predict", "predict_auth", "v1", "v2", "v2bin")
BATCH_WORKLOADS = ("batch", "v2bin_batch")


def _measured(result: dict[str, Any], workload: str) -> bool:
    return any(workload in cells for cells in result["table"].values())


def draw(result: dict[str, Any], path: Path) -> None:
    """Write the chart of `result` (the JSON document of a run) to `path`."""
    fig = plt.figure(figsize=(14, 11), layout="constrained")
    grid = fig.add_gridspec(3, 2, height_ratios=[1.0, 1.1, 1.1])
    _targets(fig.add_subplot(grid[0, :]), result)
    ax = fig.add_subplot(grid[1, 0])
    _throughput(ax, result, [w for w in SINGLE_ROW_WORKLOADS if _measured(result, w)], rows=False)
    ax.set_title("Single-row throughput (bars: median, dots: rounds)", loc="left")
    ax = fig.add_subplot(grid[1, 1])
    _throughput(ax, result, [w for w in BATCH_WORKLOADS if _measured(result, w)], rows=True)
    ax.axhline(2_000_000, color=FAIL, linestyle=":", linewidth=1)
    ax.text(0.45, 2_000_000, "target 2M rows/s", color=FAIL, ha="right", va="bottom", fontsize=8)
    ax.set_title("1,000-row batch throughput", loc="left")
    _latency(fig.add_subplot(grid[2, 0]), result)
    if result["memory"]["scaling"]:
        _memory(fig.add_subplot(grid[2, 1]), result)
    env = result["environment"]
    conf = result["gunicorn_conf"]
    fig.suptitle(
        f"nox -s bench  {result['started']}  nproc={env['nproc']}  load {env['load_before']}"
        f"  |  gunicorn: {conf.get('worker_class', '?')} x{conf.get('workers', '?')}, "
        f"threads={conf.get('threads', '?')}, keepalive={conf.get('keepalive', '?')}",
        fontsize=11,
    )
    fig.savefig(path, dpi=110)
    plt.close(fig)
