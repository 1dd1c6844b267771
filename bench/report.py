"""From measured rows to the results: medians, same-round ratios, targets, Markdown."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from typing import Any

from load import percentile
from workloads import WORKLOAD_LABELS

# The targets (issues 8, 11 and 14), checked on every run; ratios are medians of per-round
# ratios of rows measured side by side.
PREDICT_VS_CEILING = 0.95
PREDICT_VS_SEED = 1.5
PREDICT_VS_SEED_THROUGHPUT = 2.5
V2_VS_PREDICT = 0.85
V1_VS_PREDICT = 0.90
AUTH_VS_PREDICT = 0.90
V2_BINARY_VS_PREDICT = 0.90
V2_BINARY_BATCH_VS_CEILING = 1.0
BATCH_ROWS_PER_S = 2_000_000
WORKER_INCREMENT_MB = 60.0
P99_VS_SEED = 1.0
BATCH_P99_VS_CEILING = 2.0
# Issue 27: Granian against Gunicorn, and Gunicorn's connection spread.
GRANIAN_VS_GUNICORN = 2.0
GRANIAN_P99_VS_GUNICORN = 1.0
LOWEST_ROUND_VS_MEDIAN = 0.9

# name: (top, bottom, metric); top / bottom of the same round.
RATIOS: dict[str, tuple[tuple[str, str], tuple[str, str], str]] = {
    "predict_vs_ceiling": (("server", "predict"), ("ceiling", "predict"), "rps"),
    "predict_vs_seed": (("server", "predict"), ("seed", "predict"), "rps"),
    "v1_vs_predict": (("server", "v1"), ("server", "predict"), "rps"),
    "v2_vs_predict": (("server", "v2"), ("server", "predict"), "rps"),
    "v2_vs_ceiling": (("server", "v2"), ("ceiling", "v2"), "rps"),
    "auth_vs_predict": (("server_auth", "predict_auth"), ("server", "predict"), "rps"),
    "v2bin_vs_predict": (("server", "v2bin"), ("server", "predict"), "rps"),
    "v2bin_batch_vs_ceiling_batch": (("server", "v2bin_batch"), ("ceiling", "batch"), "rows_per_s"),
    "batch_vs_ceiling": (("server", "batch"), ("ceiling", "batch"), "rps"),
    "batch_vs_seed": (("server", "batch"), ("seed", "batch"), "rps"),
    "ceiling_vs_seed_predict": (("ceiling", "predict"), ("seed", "predict"), "rps"),
    "p99_predict_vs_seed": (("server", "predict"), ("seed", "predict"), "p99_ms"),
    "p99_batch_vs_ceiling": (("server", "batch"), ("ceiling", "batch"), "p99_ms"),
    "granian_vs_gunicorn_predict": (("server_granian", "predict"), ("server", "predict"), "rps"),
    "granian_vs_gunicorn_v2": (("server_granian", "v2"), ("server", "v2"), "rps"),
    "granian_vs_gunicorn_v2bin": (("server_granian", "v2bin"), ("server", "v2bin"), "rps"),
    "granian_vs_gunicorn_v2bin_batch": (
        ("server_granian", "v2bin_batch"),
        ("server", "v2bin_batch"),
        "rows_per_s",
    ),
    "granian_vs_gunicorn_v2_batch": (
        ("server_granian", "v2_batch"),
        ("server", "v2_batch"),
        "rows_per_s",
    ),
    "granian_vs_gunicorn_batch": (("server_granian", "batch"), ("server", "batch"), "rows_per_s"),
    "p99_granian_vs_gunicorn_predict": (
        ("server_granian", "predict"),
        ("server", "predict"),
        "p99_ms",
    ),
    "reuse_port_vs_shared_predict": (("server", "predict"), ("server_shared", "predict"), "rps"),
    "reuse_port_vs_shared_v2": (("server", "v2"), ("server_shared", "v2"), "rps"),
}


def median(values: Sequence[float]) -> float:
    """The median, 0.0 for no values."""
    return float(statistics.median(values)) if values else 0.0


def summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Medians of rounds per server and workload; errors are summed."""
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        table.setdefault(row["server"], {}).setdefault(row["workload"], {"rounds": []})
        table[row["server"]][row["workload"]]["rounds"].append(row)
    for workloads in table.values():
        for cell in workloads.values():
            rounds = cell["rounds"]
            for metric in ("rps", "rows_per_s", "p50_ms", "p99_ms", "server_cpu_us_per_request"):
                cell[metric] = round(median([r[metric] for r in rounds]), 3)
            cell["rps_min"] = min(r["rps"] for r in rounds)
            cell["rps_max"] = max(r["rps"] for r in rounds)
            cell["non_2xx"] = sum(r["non_2xx"] for r in rounds)
            cell["socket_errors"] = sum(r["socket_errors"] for r in rounds)
            cell["requests"] = sum(r["requests"] for r in rounds)
    return table


def round_ratio(
    rows: list[dict[str, Any]], top: tuple[str, str], bottom: tuple[str, str], metric: str = "rps"
) -> float | None:
    """Median over rounds of metric(top) / metric(bottom), each pair measured in one round."""
    by_key = {(r["round"], r["server"], r["workload"]): r[metric] for r in rows}
    rounds = sorted({r["round"] for r in rows})
    ratios = [
        by_key[(n, *top)] / by_key[(n, *bottom)]
        for n in rounds
        if (n, *top) in by_key and by_key.get((n, *bottom))
    ]
    return round(median(ratios), 3) if ratios else None


def ratios(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    """Every same-round ratio of RATIOS."""
    return {name: round_ratio(rows, *spec) for name, spec in RATIOS.items()}


def spread(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """How evenly each server's workers shared the load, per workload, over the rounds.

    ``share``: the least busy worker's share of the workers' CPU times their count (1.0 even,
    0.0 idle), median and lowest round; ``lowest_vs_median``: the slowest round's req/s over
    the median's (an idle worker shows as a slow round).
    """
    cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        cells.setdefault((row["server"], row["workload"]), []).append(row)
    found = []
    for (server, workload), measured in sorted(cells.items()):
        shares = [r["worker_share"] for r in measured if r.get("worker_share") is not None]
        rps = [r["rps"] for r in measured]
        middle = median(rps)
        found.append(
            {
                "server": server,
                "workload": workload,
                "rounds": len(measured),
                "share_median": median(shares) if shares else None,
                "share_lowest": min(shares) if shares else None,
                "lowest_vs_median": round(min(rps) / middle, 3) if middle else None,
            }
        )
    return found


def on_off(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each speed trick on (``server``) against off (``server_off_<trick>``), same rounds.

    Per workload the off row serves: throughput on/off (> 1: the trick gains), p99 off/on
    (> 1: the trick shortens the tail) and server CPU per request off/on (> 1: it saves CPU),
    each the median of per-round ratios, with the rounds' spread of the throughput ratio.
    """
    by_key = {(r["round"], r["server"], r["workload"]): r for r in rows}
    found = sorted(
        {(r["server"], r["workload"]) for r in rows if r["server"].startswith("server_off_")}
    )
    records = []
    for off, workload in found:
        pairs = [
            (by_key[(n, "server", workload)], by_key[(n, off, workload)])
            for n, server, w in by_key
            if server == off and w == workload and (n, "server", workload) in by_key
        ]
        if not pairs:
            continue
        rps = [on["rps"] / max(o["rps"], 1e-9) for on, o in pairs]
        records.append(
            {
                "trick": off[len("server_off_") :],
                "workload": workload,
                "rps_on_vs_off": round(median(rps), 3),
                "rps_ratio_min": round(min(rps), 3),
                "rps_ratio_max": round(max(rps), 3),
                "p99_off_vs_on": round(
                    median([o["p99_ms"] / max(on["p99_ms"], 1e-9) for on, o in pairs]), 3
                ),
                "cpu_off_vs_on": round(
                    median(
                        [
                            o["server_cpu_us_per_request"]
                            / max(on["server_cpu_us_per_request"], 1e-9)
                            for on, o in pairs
                        ]
                    ),
                    3,
                ),
                "rounds": len(pairs),
            }
        )
    return records


def increments(points: list[dict[str, Any]]) -> dict[str, float | None]:
    """Largest memory added by one more worker, per kind, over consecutive worker counts."""
    result: dict[str, float | None] = {}
    for kind in ("rss", "pss", "uss"):
        steps = [
            (b["total_mb"][kind] - a["total_mb"][kind]) / max(b["workers"] - a["workers"], 1)
            for a, b in itertools.pairwise(points)
        ]
        result[kind] = round(max(steps), 1) if steps else None
    return result


def open_loop_summary(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per offered rate and server: p50/p99/p99.9 over every request of every round."""
    pooled: dict[tuple[int, str], dict[str, Any]] = {}
    for run in runs:
        cell = pooled.setdefault(
            (run["rate"], run["server"]),
            {"rate": run["rate"], "server": run["server"], "latencies": [], "failures": 0},
        )
        cell["latencies"] += run["latencies_ms"]
        cell["failures"] += run["failures"]
    summary = []
    for (_rate, _server), cell in sorted(pooled.items()):
        ordered = sorted(cell.pop("latencies"))
        cell["requests"] = len(ordered)
        for name, fraction in (("p50_ms", 0.5), ("p99_ms", 0.99), ("p999_ms", 0.999)):
            cell[name] = round(percentile(ordered, fraction), 3)
        cell["max_ms"] = round(ordered[-1], 3) if ordered else 0.0
        summary.append(cell)
    return summary


def targets(
    table: dict[str, dict[str, dict[str, Any]]],
    ratio: dict[str, float | None],
    worker_mb: dict[str, float | None],
    open_loop: list[dict[str, Any]],
    spread_cells: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The issues' targets as PASS/FAIL records (value None: not measured -> FAIL)."""
    ours = {k: v for s in ("server", "server_auth") for k, v in table.get(s, {}).items()}
    errors = sum(cell["non_2xx"] + cell["socket_errors"] for cell in ours.values())
    batch = table.get("server", {}).get("batch", {}).get("rows_per_s")
    specs: list[tuple[str, float | None, float, str, str]] = [
        (
            "/predict >= 0.95x framework ceiling",
            ratio["predict_vs_ceiling"],
            PREDICT_VS_CEILING,
            ">=",
            "x",
        ),
        ("/predict >= 1.5x seed baseline", ratio["predict_vs_seed"], PREDICT_VS_SEED, ">=", "x"),
        (
            "/predict >= 2.5x seed baseline (issue 14)",
            ratio["predict_vs_seed"],
            PREDICT_VS_SEED_THROUGHPUT,
            ">=",
            "x",
        ),
        ("0 non-2xx and 0 socket errors (server)", errors if ours else None, 0, "<=", ""),
        ("V2 infer >= 0.85x /predict", ratio["v2_vs_predict"], V2_VS_PREDICT, ">=", "x"),
        ("KServe V1 :predict >= 0.9x /predict", ratio["v1_vs_predict"], V1_VS_PREDICT, ">=", "x"),
        (
            "/predict, auth on >= 0.9x auth off",
            ratio["auth_vs_predict"],
            AUTH_VS_PREDICT,
            ">=",
            "x",
        ),
        (
            "V2 binary 1 row >= 0.9x /predict",
            ratio["v2bin_vs_predict"],
            V2_BINARY_VS_PREDICT,
            ">=",
            "x",
        ),
        (
            "V2 binary 1,000 rows >= 1.0x ceiling's 1,000-row rows/s",
            ratio["v2bin_batch_vs_ceiling_batch"],
            V2_BINARY_BATCH_VS_CEILING,
            ">=",
            "x",
        ),
        ("1,000-row /predict >= 2,000,000 rows/s", batch, BATCH_ROWS_PER_S, ">=", " rows/s"),
        (
            "closed loop: /predict p99 <= 1.0x seed's p99",
            ratio["p99_predict_vs_seed"],
            P99_VS_SEED,
            "<=",
            "x",
        ),
        (
            "batch p99 <= 2x ceiling's batch p99",
            ratio["p99_batch_vs_ceiling"],
            BATCH_P99_VS_CEILING,
            "<=",
            "x",
        ),
        (
            "each extra worker adds <= 60 MB (PSS)",
            worker_mb.get("pss"),
            WORKER_INCREMENT_MB,
            "<=",
            " MB",
        ),
    ]
    if "granian_vs_gunicorn_predict" in ratio and table.get("server_granian"):
        specs += [
            (
                "Granian /predict >= 2.0x Gunicorn's",
                ratio["granian_vs_gunicorn_predict"],
                GRANIAN_VS_GUNICORN,
                ">=",
                "x",
            ),
            (
                "Granian /predict p99 <= Gunicorn's",
                ratio["p99_granian_vs_gunicorn_predict"],
                GRANIAN_P99_VS_GUNICORN,
                "<=",
                "x",
            ),
        ]
    for cell in spread_cells or []:
        if cell["server"] == "server" and cell["workload"] in {"predict", "v2"}:
            specs.append(
                (
                    f"Gunicorn {cell['workload']}: lowest round >= 0.9x the median",
                    cell["lowest_vs_median"],
                    LOWEST_ROUND_VS_MEDIAN,
                    ">=",
                    "x",
                )
            )
    by_rate: dict[int, dict[str, float]] = {}
    for cell in open_loop:
        by_rate.setdefault(cell["rate"], {})[cell["server"]] = cell["p99_ms"]
    if not open_loop:
        specs.append(("fixed rate: /predict p99 <= seed's p99 at each rate", None, 1.0, "<=", "x"))
    for rate, p99 in sorted(by_rate.items()):
        value = p99["server"] / p99["seed"] if p99.get("seed") and "server" in p99 else None
        specs.append((f"fixed rate {rate}/s: /predict p99 <= seed's p99", value, 1.0, "<=", "x"))
    records = []
    for name, value, threshold, op, unit in specs:
        passed = value is not None and (value >= threshold if op == ">=" else value <= threshold)
        records.append(
            {
                "target": name,
                "value": value,
                "threshold": threshold,
                "op": op,
                "unit": unit,
                "pass": passed,
            }
        )
    return records


def fmt(value: float | None, digits: int = 0) -> str:
    """A number with thousands separators, or 'n/a'."""
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def markdown(result: dict[str, Any]) -> str:
    """The results as Markdown: context, throughput, ratios, open loop, memory, PASS/FAIL."""
    env = result["environment"]
    conf = result["gunicorn_conf"]
    args = result["args"]
    lines = [
        f"# Benchmark results ({result['label']})",
        "",
        f"- when: {result['started']} -> {result['finished']} (UTC)",
        f"- machine: `nproc` = {env['nproc']}, load average before {env['load_before']}, "
        f"after {env['load_after']}; busy cores before the run (1 s sample): "
        f"{env['busy_cores_before']}",
        f"- versions: {', '.join(f'{k} {v}' for k, v in env['versions'].items())}",
        f"- shipped Gunicorn config: {', '.join(f'{k}={v}' for k, v in conf.items())}",
        f"- load: wrk {env['wrk']}, {args['threads']} thread, {args['connections']} connections, "
        f"{args['warmup']} s warm-up + {args['duration']} s per measurement, {args['rounds']} "
        "interleaved rounds; medians of rounds",
    ]
    if args.get("env"):
        lines.append(f"- extra environment for server and ceiling: `{args['env']}`")
    lines += [
        "",
        "## Throughput and latency, closed loop (median of rounds)",
        "",
        "| server | workload | req/s | rows/s | p50 ms | p99 ms | non-2xx | socket errors "
        "| server CPU µs/req |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for server, workloads in result["table"].items():
        for workload, cell in workloads.items():
            lines.append(
                f"| {server} | {WORKLOAD_LABELS.get(workload, workload)} | {fmt(cell['rps'])} "
                f"| {fmt(cell['rows_per_s'])} | {cell['p50_ms']:.2f} | {cell['p99_ms']:.2f} "
                f"| {cell['non_2xx']} | {cell['socket_errors']} "
                f"| {fmt(cell['server_cpu_us_per_request'])} |"
            )
    lines += ["", "## Ratios (median of per-round ratios, same run)", ""]
    lines += ["| ratio | value |", "|---|---:|"]
    lines += [f"| {name} | {fmt(value, 3)} |" for name, value in result["ratios"].items()]
    if result.get("on_off"):
        lines += [
            "",
            "## Speed tricks on/off (server against server_off_<trick>, same rounds)",
            "",
            "Ratios > 1 favour the trick: req/s on/off, p99 off/on, CPU per request off/on;"
            " median of per-round ratios, [min, max] of the req/s ratio over the rounds.",
            "",
            "| trick | workload | req/s on/off [min, max] | p99 off/on | CPU/req off/on | rounds |",
            "|---|---|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r['trick']} | {WORKLOAD_LABELS.get(r['workload'], r['workload'])} "
            f"| {r['rps_on_vs_off']:.3f} [{r['rps_ratio_min']:.3f}, {r['rps_ratio_max']:.3f}] "
            f"| {r['p99_off_vs_on']:.3f} | {r['cpu_off_vs_on']:.3f} | {r['rounds']} |"
            for r in result["on_off"]
        ]
    open_loop = result.get("open_loop", {})
    if result.get("spread"):
        lines += [
            "",
            "## Connection spread over workers (keep-alive connections, per round)",
            "",
            "Least busy worker's share of the workers' CPU x their count (1.0 even, 0.0 idle),"
            " median and lowest round; slowest round's req/s over the median's.",
            "",
            "| server | workload | rounds | share (median) | share (lowest) "
            "| lowest round / median |",
            "|---|---|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {c['server']} | {c['workload']} | {c['rounds']} | {fmt(c['share_median'], 2)} "
            f"| {fmt(c['share_lowest'], 2)} | {fmt(c['lowest_vs_median'], 3)} |"
            for c in result["spread"]
        ]
    lines += ["", "## Fixed rate (open loop, vegeta): single-row /predict", ""]
    if open_loop.get("summary"):
        lines += [
            f"Offered rates are fractions {open_loop['fractions']} of the seed's closed-loop "
            f"maximum in this run; {open_loop['seconds']} s per rate and server, interleaved, "
            "percentiles over every request of every round.",
            "",
            "| rate req/s | server | requests | failures | p50 ms | p99 ms | p99.9 ms | max ms |",
            "|---:|---|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {c['rate']:,} | {c['server']} | {c['requests']:,} | {c['failures']} "
            f"| {c['p50_ms']:.2f} | {c['p99_ms']:.2f} | {c['p999_ms']:.2f} | {c['max_ms']:.2f} |"
            for c in open_loop["summary"]
        ]
    else:
        lines.append(f"not measured: {open_loop.get('skipped', 'no seed or server')}")
    lines += ["", "## Memory (MiB; master + workers, psutil)", ""]
    lines += [
        "| server | workers | RSS | PSS | USS | per extra worker RSS / PSS / USS |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for server, points in result["memory"]["scaling"].items():
        inc = result["memory"]["increments"][server]
        for point in points:
            t = point["total_mb"]
            lines.append(
                f"| {server} | {point['workers']} | {t['rss']:.1f} | {t['pss']:.1f} "
                f"| {t['uss']:.1f} | {fmt(inc['rss'], 1)} / {fmt(inc['pss'], 1)} / "
                f"{fmt(inc['uss'], 1)} |"
            )
    lines += ["", "## Targets", "", "```"]
    lines += [target_line(t) for t in result["targets"]]
    lines += ["```", ""]
    return "\n".join(lines)


def target_line(record: dict[str, Any]) -> str:
    """One PASS/FAIL line."""
    value = record["value"]
    shown = "not measured" if value is None else f"{value:,.3g}{record['unit']}"
    if isinstance(value, float) and value >= 1000:
        shown = f"{value:,.0f}{record['unit']}"
    verdict = "PASS" if record["pass"] else "FAIL"
    return f"{verdict}  {record['target']}: {shown}"
