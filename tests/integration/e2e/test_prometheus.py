"""A real Prometheus scrapes the deployed pods; its rules fire on a real fault.

tools/local-cluster starts Prometheus on the host (monitoring.sh, E2E_PROMETHEUS_URL on
127.0.0.1) with the shipped scrape job (pods found through the Kubernetes API) and the shipped
rules (`for:` shortened to 10 s). These tests deploy overlays/local into their own namespace,
send traffic, and read everything back through Prometheus' HTTP API: the request counter and
latency histogram per pod, model_info, every dashboard query, and two alerts: the class-mix
alert on one-class traffic, and MLModelTargetDown when a pod's container is frozen (a hung
server, which also turns the pod unready).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .support import (
    ROOT,
    SETOSA,
    Deployed,
    deploy_local_overlay,
    fetch,
    pod_ready,
)

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

DASHBOARD = ROOT / "deploy" / "monitoring" / "grafana" / "ml-model-dashboard.json"
# Series of kube-state-metrics: the dashboard's ready-replica panel uses them; this cluster has
# no kube-state-metrics (the Go module proxy does not serve it), so they must come back empty.
KUBE_STATE_METRICS = ("kube_deployment_status_replicas",)
REQUESTS_PER_POD = 12
ROWS_PER_REQUEST = 10

Json = dict[str, Any]


# --------------------------------------------------------------------------- Prometheus API


@dataclass
class Prometheus:
    """Client of the Prometheus HTTP API on 127.0.0.1."""

    url: str

    def get(self, path: str, **params: str) -> Any:
        """GET /api/v1/PATH; return `data` (the call must succeed)."""
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=30) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, promql: str) -> list[Json]:
        """Instant vector query: the result list."""
        data = self.get("query", query=promql)
        assert data["resultType"] == "vector", data
        return list(data["result"])

    def by_pod(self, promql: str) -> dict[str, float]:
        """Instant query whose series carry a `pod` label: pod -> value."""
        return {s["metric"]["pod"]: float(s["value"][1]) for s in self.query(promql)}

    def alerts(self, name: str, **labels: str) -> list[Json]:
        """Active alerts (pending or firing) named `name` whose labels include `labels`."""
        return [
            alert
            for alert in self.get("alerts")["alerts"]
            if alert["labels"].get("alertname") == name
            and labels.items() <= alert["labels"].items()
        ]


def wait_for(what: str, timeout: float, probe: Callable[[], Any]) -> Any:
    """Poll `probe` every 2 s until it returns something truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(2)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; last answer: {last!r}")


def show(title: str, series: list[Json]) -> None:
    """Print query results, one series a line."""
    print(f"\n{title}: {len(series)} series")
    for s in series:
        print(f"  {s['metric']} = {s['value'][1]}")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def prometheus() -> Prometheus:
    """The cluster tooling's Prometheus (E2E_PROMETHEUS_URL), ready."""
    url = os.environ.get("E2E_PROMETHEUS_URL")
    if not url:
        # A skip even in CI: minikube/kind runs (GitHub Actions) have no host Prometheus;
        # .ci/run's cluster always exports the variable, so this suite runs there.
        pytest.skip(
            "E2E_PROMETHEUS_URL is unset: tools/local-cluster/cluster.sh up starts Prometheus "
            "and `cluster.sh env` exports it (other clusters: deploy/monitoring/README.md)"
        )
    assert urllib.parse.urlsplit(url).hostname == "127.0.0.1", "Prometheus must be local"
    client = Prometheus(url.rstrip("/"))
    client.get("status/buildinfo")
    return client


@pytest.fixture(scope="module")
def app(
    prometheus: Prometheus,
    cluster: Any,
    e2e_image: str,
    load_image: Callable[[str], bool],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployed]:
    """overlays/local in a namespace of this module's own (test_deployment deletes its one)."""
    load_image(e2e_image)
    with deploy_local_overlay(cluster, e2e_image, tmp_path_factory.mktemp("monitored")) as app:
        yield app


@pytest.fixture(scope="module")
def traffic(app: Deployed, prometheus: Prometheus) -> dict[str, int]:
    """Send REQUESTS_PER_POD one-class (setosa) batches to every pod; requests sent per pod.

    Only once Prometheus holds a sample of each pod's counters from before the traffic:
    increase() over a series that starts after it would see no increase at all.
    """
    pods = app.ready_pods()
    selector = f'inference_predictions_total{{namespace="{app.namespace}", class_name="setosa"}}'
    wait_for(
        "a scrape of every pod before the traffic",
        120,
        lambda: set(prometheus.by_pod(selector)) == set(pods),
    )
    sent = {}
    for pod in pods:
        with app.port_forward(f"pod/{pod}") as port:
            for _ in range(REQUESTS_PER_POD):
                response = fetch(
                    port, "POST", "/predict", {"instances": [SETOSA] * ROWS_PER_REQUEST}
                )
                assert response.status == 200, response.body
        sent[pod] = REQUESTS_PER_POD
    print(f"sent {REQUESTS_PER_POD} requests of {ROWS_PER_REQUEST} setosa rows to each of {sent}")
    return sent


# --------------------------------------------------------------------------- discovery


def test_prometheus_discovers_and_scrapes_every_pod(app: Deployed, prometheus: Prometheus) -> None:
    """Kubernetes service discovery finds each pod; its target is up with job/namespace/pod."""
    pods = {pod["metadata"]["name"] for pod in app.pods()}

    def targets() -> list[Json]:
        active = prometheus.get("targets", state="active")["activeTargets"]
        mine = [t for t in active if t["labels"].get("namespace") == app.namespace]
        healthy = {t["labels"]["pod"] for t in mine if t["health"] == "up"}
        return mine if healthy == pods else []

    found = wait_for(f"targets {sorted(pods)} up", 120, targets)
    for target in found:
        print(f"target {target['scrapeUrl']} {target['labels']} health={target['health']}")
        assert target["labels"]["job"] == "ml-model"
        assert target["scrapeUrl"].endswith(":5000/metrics")


# --------------------------------------------------------------------------- series


def test_request_counter_and_histogram_per_pod(
    app: Deployed, prometheus: Prometheus, traffic: dict[str, int]
) -> None:
    """Every request sent to a pod is in its counter and its histogram, and nothing else is."""
    selector = f'namespace="{app.namespace}", route="/predict", method="POST", status="200"'
    counts = wait_for(
        f"request counts {traffic}",
        60,
        lambda: (
            (c := prometheus.by_pod(f"inference_request_duration_seconds_count{{{selector}}}"))
            == traffic
            and c
        ),
    )
    show("requests", prometheus.query(f"inference_request_duration_seconds_count{{{selector}}}"))
    buckets = prometheus.query(f"inference_request_duration_seconds_bucket{{{selector}}}")
    show("latency histogram buckets", buckets)
    for pod, count in counts.items():
        mine = sorted(
            (float(b["metric"]["le"]), float(b["value"][1]))
            for b in buckets
            if b["metric"]["pod"] == pod
        )
        assert mine[-1] == (float("inf"), count)
        cumulative = [value for _, value in mine]
        assert cumulative == sorted(cumulative), "buckets must be cumulative"
    # Over the buckets themselves, not increase(): the 200 series is born with the first
    # counted request, so no scrape holds it before the traffic and increase() has nothing
    # to compare; the pod's only /predict 200s are this traffic.
    p99 = prometheus.query(
        "histogram_quantile(0.99, sum by (pod, le) "
        f"(inference_request_duration_seconds_bucket{{{selector}}}))"
    )
    show("p99 latency of the traffic", p99)
    assert {s["metric"]["pod"] for s in p99} == set(traffic)
    assert all(0 < float(s["value"][1]) <= 5.0 for s in p99)
    predictions = prometheus.query(f'inference_predictions_total{{namespace="{app.namespace}"}}')
    show("predictions per class", predictions)
    rows = {
        (s["metric"]["pod"], s["metric"]["class_name"]): float(s["value"][1]) for s in predictions
    }
    for pod, n in traffic.items():
        assert rows.pop((pod, "setosa")) == n * ROWS_PER_REQUEST
        assert rows.pop((pod, "versicolor")) == rows.pop((pod, "virginica")) == 0
    assert not rows, rows


def test_model_info_per_pod(app: Deployed, prometheus: Prometheus, traffic: dict[str, int]) -> None:
    """Each pod reports model_info = 1 with the artifact sha256 and versions; all pods agree."""
    info = prometheus.query(f'inference_model_info{{namespace="{app.namespace}"}}')
    show("model_info", info)
    assert {s["metric"]["pod"] for s in info} == set(traffic)
    assert all(float(s["value"][1]) == 1 for s in info)
    assert len({s["metric"]["sha256"] for s in info}) == 1
    assert all(s["metric"]["iris_model_version"] for s in info)


def test_every_dashboard_query_answers_from_live_data(
    app: Deployed, prometheus: Prometheus, traffic: dict[str, int]
) -> None:
    """Prometheus evaluates each panel's query; all but kube-state-metrics ones return data."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    time.sleep(12)  # two scrapes after the traffic, so rate() over 1m has two points
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = target["expr"].replace("$namespace", app.namespace)
            expr = expr.replace("$__rate_interval", "2m")
            result = prometheus.query(expr)
            print(f"panel {panel['title']!r} [{target['refId']}]: {len(result)} series")
            if any(name in expr for name in KUBE_STATE_METRICS):
                assert result == [], "no kube-state-metrics runs on this cluster"
            else:
                assert result, f"{panel['title']}: {expr} returned nothing"


# --------------------------------------------------------------------------- alerts


def test_class_mix_alert_fires_on_one_class_traffic(
    app: Deployed, prometheus: Prometheus, traffic: dict[str, int]
) -> None:
    """Only setosa predicted (training: 1/3 each) fires MLModelPredictionMixShift."""
    firing = wait_for(
        "MLModelPredictionMixShift firing for setosa",
        90,
        lambda: [
            a
            for a in prometheus.alerts(
                "MLModelPredictionMixShift", namespace=app.namespace, class_name="setosa"
            )
            if a["state"] == "firing"
        ],
    )
    for alert in prometheus.alerts("MLModelPredictionMixShift", namespace=app.namespace):
        print(f"alert {alert['labels']} {alert['state']}: {alert['annotations']['summary']}")
    assert float(firing[0]["value"]) == pytest.approx(2 / 3, abs=0.01)


def _container_id(app: Deployed, pod: str) -> str:
    status = app.get(f"pod/{pod}")["status"]["containerStatuses"][0]
    runtime, _, container_id = status["containerID"].partition("://")
    assert runtime == "containerd", status["containerID"]
    return str(container_id)


def test_hung_pod_fires_target_down_and_turns_unready(
    app: Deployed, prometheus: Prometheus, traffic: dict[str, int]
) -> None:
    """Freezing a pod's container (a hung server) fires MLModelTargetDown; thawing clears it."""
    sock = os.environ.get("E2E_CONTAINERD_SOCKET")
    if not sock or not Path(sock).exists():
        pytest.skip("E2E_CONTAINERD_SOCKET is unset: freezing a container needs the node's ctr")
    pod = sorted(traffic)[0]
    container = _container_id(app, pod)
    ctr = ["ctr", "--address", sock, "-n", "k8s.io", "tasks"]
    selector = f'job="ml-model", namespace="{app.namespace}", pod="{pod}"'
    assert prometheus.query(f"up{{{selector}}} == 1"), "the pod must be up before the fault"
    assert not prometheus.alerts("MLModelTargetDown", namespace=app.namespace)
    started = time.monotonic()
    subprocess.run([*ctr, "pause", container], check=True, timeout=30)
    print(f"froze container {container[:12]} of pod {pod}")
    try:
        firing = wait_for(
            f"MLModelTargetDown firing for {pod}",
            120,
            lambda: [
                a
                for a in prometheus.alerts("MLModelTargetDown", namespace=app.namespace, pod=pod)
                if a["state"] == "firing"
            ],
        )
        print(f"alert firing {time.monotonic() - started:.0f}s after the freeze: {firing[0]}")
        assert float(firing[0]["value"]) == 0
        wait_for(f"pod {pod} NotReady", 60, lambda: not pod_ready(app.get(f"pod/{pod}")))
        print(f"pod {pod} NotReady {time.monotonic() - started:.0f}s after the freeze")
    finally:
        thawed = subprocess.run(
            [*ctr, "resume", container], capture_output=True, timeout=30, check=False
        )
        print(f"thawed container {container[:12]}: rc={thawed.returncode} {thawed.stderr!r}")
    wait_for(f"{pod} scraped again", 180, lambda: prometheus.query(f"up{{{selector}}} == 1"))
    wait_for(
        "MLModelTargetDown resolved",
        60,
        lambda: not prometheus.alerts("MLModelTargetDown", namespace=app.namespace),
    )
    app.wait_settled(timeout=180)
