"""A real model rollout v1 -> v2 -> v1 under load through the Service, and pod deletion.

Two images whose models differ (MODEL_SEED and MODEL_VERSION build arguments) are deployed
the way an operator does it, with tools/local-cluster/deploy.py (the image set in one
place, the model recorded on the pods, a change-cause per revision), into a namespace of
their own. Load goes to the Service's ClusterIP on fresh connections, so kube-proxy picks
a pod per request, as for any client in the cluster: no endpoint-aware client, no
port-forward (which would pin one pod). Nothing is retried; every failed request counts.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ..conftest import build_image
from .support import (
    DEPLOYMENT,
    PORT,
    ROOT,
    SERVICE,
    SETOSA,
    Deployed,
    unavailable,
)

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

DEPLOY = ROOT / "tools" / "local-cluster" / "deploy.py"
V2_TAG = "ml-model:pytest-e2e-v2"
V2_IMAGE_ENV = "ML_MODEL_IMAGE_V2"  # a prebuilt v2 image (built with V2_ARGS) instead
V2_ARGS = {"MODEL_SEED": "7", "MODEL_VERSION": "2.0.0-e2e"}
MODEL_INFO = re.compile(r'^(?:\w+_)?model_info\{[^}]*sha256="([0-9a-f]{64})"', re.MULTILINE)


@dataclass(frozen=True)
class Model:
    """What an image serves: its tag, model version and sha256."""

    image: str
    version: str
    sha256: str


def image_model(image: str) -> Model:
    """The model baked into `image`, from its manifest."""
    out = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--entrypoint", "iris-model", image,
         "info", "--json", "/opt/model"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    manifest = json.loads(out)
    return Model(image, str(manifest.get("model_version")), manifest["artifact"]["sha256"])


def render(image: str, namespace: str, kubeconfig: str, overlay: Path | None = None) -> str:
    """deploy.py's manifest of an overlay (default overlays/local) for `image` in `namespace`."""
    args = [sys.executable, str(DEPLOY), image, "--namespace", namespace]
    args += ["--overlay", str(overlay)] if overlay else []
    result = subprocess.run(
        args, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "KUBECONFIG": kubeconfig},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def apply(app: Deployed, manifest: str, *extra: str) -> str:
    """`kubectl apply -f -` of a manifest; return kubectl's output."""
    result = subprocess.run(
        ["kubectl", "--kubeconfig", str(app.cluster.kubeconfig), "apply", *extra, "-f", "-"],
        input=manifest, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


# --------------------------------------------------------------------------- load


@dataclass
class Seen:
    """What the load through the Service saw."""

    ok: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    versions: list[tuple[float, str]] = field(default_factory=list)  # from infer responses
    digests: list[tuple[float, str]] = field(default_factory=list)  # from /metrics

    @property
    def failed(self) -> int:
        """Number of failed requests."""
        return sum(self.failures.values())


class ModelLoad:
    """Bounded load on the Service, a fresh connection per request (kube-proxy balances).

    Workers send V2 infer requests and record the `model_version` each answer names; a
    sampler reads `model_info`'s sha256 from /metrics, so each moment's model is known.
    """

    def __init__(
        self, address: tuple[str, int], *, workers: int = 3, max_requests: int = 30_000
    ) -> None:
        self.address = address
        self.workers = workers
        self.max_requests = max_requests
        self.seen = Seen()
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def _request(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(*self.address, timeout=10)
        try:
            headers = {"Connection": "close", "Content-Type": "application/json"}
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def _infer(self) -> None:
        body = json.dumps(
            {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": SETOSA}]}
        ).encode()
        while not self._stop.is_set():
            try:
                status, answer = self._request("POST", "/v2/models/iris/infer", body)
                reply = json.loads(answer) if status == 200 else {}
                error = "" if status == 200 else f"HTTP {status}"
            except (OSError, http.client.HTTPException, ValueError) as exc:
                reply, error = {}, type(exc).__name__
            now = time.monotonic() - self.started
            with self._lock:
                if error:
                    self.seen.failures[error] += 1
                else:
                    self.seen.ok += 1
                    self.seen.versions.append((now, str(reply.get("model_version"))))
                if self.seen.ok + self.seen.failed >= self.max_requests:
                    return
            time.sleep(0.01)

    def _sample(self) -> None:
        while not self._stop.wait(0.25):
            try:
                status, text = self._request("GET", "/metrics", None)
            except (OSError, http.client.HTTPException):
                continue  # a sample, not a request under test
            match = MODEL_INFO.search(text.decode()) if status == 200 else None
            if match:
                with self._lock:
                    self.seen.digests.append((time.monotonic() - self.started, match.group(1)))

    def now(self) -> float:
        """Seconds since the load started."""
        return time.monotonic() - self.started

    def __enter__(self) -> ModelLoad:
        self._threads = [
            threading.Thread(target=self._infer, daemon=True) for _ in range(self.workers)
        ]
        self._threads.append(threading.Thread(target=self._sample, daemon=True))
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _items(self, what: str) -> list[tuple[float, str]]:
        return self.seen.versions if what == "versions" else self.seen.digests

    def between(self, what: str, start: float, end: float) -> Counter[str]:
        """Model versions (what="versions") or digests ("digests") seen in [start, end)."""
        with self._lock:
            return Counter(v for t, v in self._items(what) if start <= t < end)

    def first(self, what: str, value: str, after: float) -> float | None:
        """When `value` was first seen at or after `after`."""
        with self._lock:
            return min((t for t, v in self._items(what) if v == value and t >= after), default=None)

    def last(self, what: str, value: str, before: float) -> float | None:
        """When `value` was last seen before `before`."""
        with self._lock:
            return max((t for t, v in self._items(what) if v == value and t < before), default=None)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def models(e2e_image: str, load_image: Any) -> tuple[Model, Model]:
    """v1 (the suite's image) and v2 (another seed and model version), both in the cluster."""
    v2_image = os.environ.get(V2_IMAGE_ENV) or build_image(V2_TAG, V2_ARGS)
    v1, v2 = image_model(e2e_image), image_model(v2_image)
    assert v1.sha256 != v2.sha256, "MODEL_SEED must change the model"
    assert v1.version != v2.version
    for image in (v1.image, v2.image):
        if not load_image(image):
            unavailable(f"cannot load {image} into this cluster (E2E_CONTAINERD_SOCKET unset)")
    print(f"\nv1 {v1}\nv2 {v2}")
    return v1, v2


@contextlib.contextmanager
def deployed(
    cluster: Any, image: str, workdir: Path, prefix: str, overlay: Path | None = None
) -> Iterator[Deployed]:
    """deploy.py's rendering of `overlay` for `image`, applied in a new namespace; deleted after."""
    import yaml  # noqa: PLC0415

    namespace = f"{prefix}-{secrets.token_hex(3)}"
    manifest = render(image, namespace, str(cluster.kubeconfig), overlay)
    path = workdir / f"{namespace}.yaml"
    path.write_text(manifest, encoding="utf-8")
    objects = [doc for doc in yaml.safe_load_all(manifest) if doc]
    app = Deployed(cluster, namespace, path, objects, image)
    started = time.monotonic()
    apply(app, manifest, "--server-side", "--field-manager", "ml-model-deploy")
    try:
        app.wait_settled()
        print(f"{namespace}: {image} Available in {time.monotonic() - started:.1f}s")
        yield app
    finally:
        app.delete()


def _answers(host: str, port: int) -> str | None:
    """None if GET /readyz at host:port answers 200, else why not."""
    conn = http.client.HTTPConnection(host, port, timeout=3)
    try:
        conn.request("GET", "/readyz")
        status = conn.getresponse().status
    except OSError as error:
        return str(error)
    finally:
        conn.close()
    return None if status == 200 else f"HTTP {status}"


def service_address(app: Deployed) -> tuple[str, int]:
    """Where this host reaches the Service through kube-proxy.

    Its ClusterIP (from the node) or, where the Service has one, the node's NodePort
    (minikube's docker driver).
    """
    service = app.get(f"service/{SERVICE}")
    candidates = [(str(service["spec"]["clusterIP"]), PORT)]
    node_port = service["spec"]["ports"][0].get("nodePort")
    if node_port:
        node = json.loads(app.kubectl("get", "nodes", "-o", "json"))["items"][0]
        addresses = node["status"]["addresses"]
        internal = next(a["address"] for a in addresses if a["type"] == "InternalIP")
        candidates.append((internal, int(node_port)))
    reasons = {address: _answers(*address) for address in candidates}
    reachable = [address for address, reason in reasons.items() if reason is None]
    if not reachable:
        tried = "; ".join(f"{host}:{port}: {reason}" for (host, port), reason in reasons.items())
        unavailable(
            f"the Service does not answer from this host ({tried}): the cluster needs "
            "kube-proxy (minikube and kind have it; tools/local-cluster with the cluster branch)"
        )
    return reachable[0]


@pytest.fixture(scope="module")
def versioned(
    cluster: Any, models: tuple[Model, Model], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployed]:
    """overlays/local with v1, deployed by deploy.py into a namespace of its own."""
    with deployed(
        cluster, models[0].image, tmp_path_factory.mktemp("rollout"), "ml-model-rollout"
    ) as app:
        yield app


@pytest.fixture(scope="module")
def cluster_ip(versioned: Deployed) -> tuple[str, int]:
    """The rollout Service's address (kube-proxy)."""
    return service_address(versioned)


# --------------------------------------------------------------------------- helpers


def pod_models(app: Deployed) -> set[tuple[str, str]]:
    """(model-version, model-sha256) annotations of the app's live pods."""
    found = set()
    for pod in app.pods():
        if pod["metadata"].get("deletionTimestamp"):
            continue
        annotations = pod["metadata"].get("annotations", {})
        found.add(
            (annotations.get("ml-model/model-version"), annotations.get("ml-model/model-sha256"))
        )
    return found


def roll(app: Deployed, load: ModelLoad, change: Any, name: str) -> tuple[float, float]:
    """Run `change`, wait until the rollout completed and the old pods are gone.

    Returns (start, settled) in load time.
    """
    before = {pod["metadata"]["name"] for pod in app.pods()}
    start = load.now()
    change()
    app.rollout_status()
    done = load.now()
    app.wait_gone(before, timeout=app.grace_seconds + 30)
    settled = load.now()
    app.wait_settled()
    complete, gone = done - start, settled - start
    print(f"{name}: rollout complete at +{complete:.1f}s, old pods gone at +{gone:.1f}s")
    return start, settled


# --------------------------------------------------------------------------- tests


def test_apply_twice_changes_nothing(versioned: Deployed, models: tuple[Model, Model]) -> None:
    """Applying an unchanged manifest again changes no object (no new resourceVersion).

    Server-side apply (deploy.py) reports no change. Client-side apply (`kubectl apply -k`)
    reports the PodDisruptionBudget `configured` every time, though the API server changes
    nothing: its selector's patch strategy is `replace`, so kubectl's patch is never empty.
    """
    v1, _ = models
    kinds = "deployment,service,hpa,pdb,networkpolicy,serviceaccount"

    def versions() -> dict[str, str]:
        items = versioned.get(kinds)["items"]
        return {
            f"{o['kind']}/{o['metadata']['name']}": o["metadata"]["resourceVersion"] for o in items
        }

    manifest = versioned.manifest.read_text(encoding="utf-8")
    before = versions()
    server_side = apply(versioned, manifest, "--server-side", "--field-manager", "ml-model-deploy")
    print(f"server-side apply, unchanged:\n{server_side}")
    assert versions() == before, "server-side apply of an unchanged manifest changed an object"
    assert "configured" not in server_side

    apply(versioned, manifest)  # the first client-side apply records last-applied-configuration
    recorded = versions()
    client_side = apply(versioned, manifest)
    print(f"client-side apply, unchanged:\n{client_side}")
    assert versions() == recorded, "client-side apply of an unchanged manifest changed an object"
    kubeconfig = str(versioned.cluster.kubeconfig)
    diff = subprocess.run(
        ["kubectl", "--kubeconfig", kubeconfig, "diff", "-f", str(versioned.manifest)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert diff.returncode == 0, diff.stdout + diff.stderr
    assert pod_models(versioned) == {(v1.version, v1.sha256)}


def test_model_rollout_and_undo_under_load_through_the_service(
    versioned: Deployed, models: tuple[Model, Model], cluster_ip: tuple[str, int]
) -> None:
    """v1 -> v2 (deploy.py) -> v1 (`rollout undo`) under load: the served model switches, 0 fail."""
    v1, v2 = models
    app = versioned
    target = f"deployment/{DEPLOYMENT}"
    with ModelLoad(cluster_ip) as load:
        time.sleep(3)
        manifest = render(v2.image, app.namespace, str(app.cluster.kubeconfig))
        ssa = ("--server-side", "--field-manager", "ml-model-deploy")
        up_start, up_settled = roll(app, load, lambda: apply(app, manifest, *ssa), "v1 -> v2")
        assert pod_models(app) == {(v2.version, v2.sha256)}
        time.sleep(3)
        down_start, down_settled = roll(
            app,
            load,
            lambda: app.kubectl("rollout", "undo", target, "-n", app.namespace),
            "v2 -> v1",
        )
        assert pod_models(app) == {(v1.version, v1.sha256)}
        time.sleep(3)
        end = load.now()
    seen = load.seen
    history = app.kubectl("rollout", "history", target, "-n", app.namespace)
    print(history)
    for what, old, new in (("versions", v1.version, v2.version), ("digests", v1.sha256, v2.sha256)):
        print(
            f"{what}: before {dict(load.between(what, 0, up_start))}; "
            f"after v2 {dict(load.between(what, up_settled, down_start))}; "
            f"after undo {dict(load.between(what, down_settled, end))}; "
            f"v2 first +{_rel(load.first(what, new, up_start), up_start)} and v1 last "
            f"+{_rel(load.last(what, old, down_start), up_start)} after the v2 apply; "
            f"v1 back first +{_rel(load.first(what, old, down_start), down_start)} after the undo"
        )
    total = seen.ok + seen.failed
    print(f"{total} requests: {seen.ok} ok, {seen.failed} failed {dict(seen.failures)}")
    assert seen.failed == 0, dict(seen.failures)
    assert seen.ok >= 100, "too little traffic to prove anything"
    # The digest from /metrics: each phase served exactly its model.
    assert set(load.between("digests", 0, up_start)) == {v1.sha256}
    assert set(load.between("digests", up_settled, down_start)) == {v2.sha256}
    assert set(load.between("digests", down_settled, end)) == {v1.sha256}
    assert v2.image in history or v2.version in history, "change-cause names the rollout"
    ROLLOUT["phases"] = (load, (0, up_start), (up_settled, down_start), (down_settled, end))


# The rollout's observations, for the next test (the tests run in file order).
ROLLOUT: dict[str, Any] = {}


def test_each_answer_of_the_rollout_names_its_model_version(models: tuple[Model, Model]) -> None:
    """Each V2 answer's `model_version` is the model of its phase: v1, then v2, then v1."""
    if "phases" not in ROLLOUT:
        pytest.fail("test_model_rollout_and_undo_under_load_through_the_service did not finish")
    v1, v2 = models
    load, before, after, undone = ROLLOUT["phases"]
    assert set(load.between("versions", *before)) == {v1.version}, "V2 infer: model_version"
    assert set(load.between("versions", *after)) == {v2.version}
    assert set(load.between("versions", *undone)) == {v1.version}


def _rel(value: float | None, origin: float) -> str:
    return "never" if value is None else f"{value - origin:.1f}s"


def test_deleting_a_pod_under_load_through_the_service_fails_nothing(
    versioned: Deployed, cluster_ip: tuple[str, int]
) -> None:
    """`kubectl delete pod` of one of two replicas under load: 0 failed requests."""
    app = versioned
    app.wait_settled()
    names = app.ready_pods()
    assert len(names) >= 2, "a PDB protects traffic only with a second pod"
    victim = names[0]
    with ModelLoad(cluster_ip) as load:
        time.sleep(3)
        start = load.now()
        app.kubectl("delete", "pod", victim, "-n", app.namespace, "--wait=true", timeout=120)
        gone = load.now()
        app.wait_settled()
        time.sleep(3)
    seen = load.seen
    print(
        f"deleted {victim}: gone after {gone - start:.1f}s; {seen.ok + seen.failed} requests, "
        f"{seen.ok} ok, {seen.failed} failed {dict(seen.failures)}"
    )
    assert seen.ok >= 50
    assert seen.failed == 0, dict(seen.failures)


def test_a_normal_start_logs_no_probe_failure(versioned: Deployed) -> None:
    """No failed startup or liveness probe in the namespace, after every start above.

    Readiness probes of pods being deleted are refused once Gunicorn closes its socket
    (after the preStop pause): that is the drain working, not a start, so they are only
    counted.
    """
    events = json.loads(
        versioned.kubectl("get", "events", "-n", versioned.namespace, "-o", "json")
    )["items"]
    unhealthy = [
        f"{e['involvedObject']['name']}: {e.get('message', '')}"
        for e in events
        if e.get("reason") == "Unhealthy"
    ]
    starts = sum(1 for e in events if e.get("reason") == "Started")
    at_start = [m for m in unhealthy if "Startup probe" in m or "Liveness probe" in m]
    print(
        f"{starts} container starts; {len(at_start)} failed startup/liveness probes; "
        f"{len(unhealthy) - len(at_start)} refused readiness probes of draining pods"
    )
    assert starts >= 4, "the rollouts above started pods"
    assert at_start == []


def _extract_model(image: str, directory: Path) -> None:
    """Copy /opt/model/{model.joblib,model.json} out of `image` into `directory`."""
    created = subprocess.run(
        ["docker", "create", image], capture_output=True, text=True, check=True, timeout=120
    ).stdout.strip()
    try:
        for name in ("model.joblib", "model.json"):
            subprocess.run(
                ["docker", "cp", f"{created}:/opt/model/{name}", str(directory / name)],
                capture_output=True, check=True, timeout=120,
            )  # fmt: skip
    finally:
        subprocess.run(["docker", "rm", created], capture_output=True, check=False, timeout=120)


def test_auth_and_a_mounted_model_compose_onto_the_overlay(
    cluster: Any, models: tuple[Model, Model], tmp_path: Path
) -> None:
    """components/auth + components/model-volume on the v1 image: v2's model, behind tokens.

    The ConfigMap holds v2's model files (a generator: a new model, a new name, a rollout);
    the Secret holds the token. The pods serve v2's model although the image is v1, and say
    so (annotations from deploy.py, model_info from the server); prediction routes refuse
    requests without the token, health and metrics stay open.
    """
    v1, v2 = models
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    _extract_model(v2.image, overlay)
    token = secrets.token_hex(16)
    (overlay / "tokens").write_text(f"{token}\n", encoding="utf-8")
    k8s = ROOT / "deploy" / "k8s"
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        f"resources: [{os.path.relpath(k8s / 'overlays' / 'local', overlay)}]\n"
        f"components: [{os.path.relpath(k8s / 'components' / 'auth', overlay)}, "
        f"{os.path.relpath(k8s / 'components' / 'model-volume', overlay)}]\n"
        "configMapGenerator: [{name: ml-model-model, files: [model.joblib, model.json]}]\n"
        "secretGenerator: [{name: ml-model-auth, files: [tokens]}]\n",
        encoding="utf-8",
    )
    with deployed(cluster, v1.image, tmp_path, "ml-model-components", overlay) as app:
        address = service_address(app)
        annotations = {
            (pod["metadata"]["annotations"].get("ml-model/model-source"),
             pod["metadata"]["annotations"].get("ml-model/model-sha256"))
            for pod in app.pods()
        }  # fmt: skip
        assert annotations == {("volume", "unpinned")}, "the image's model is not what is served"

        def call(method: str, path: str, body: Any = None, bearer: str | None = None) -> Any:
            conn = http.client.HTTPConnection(*address, timeout=10)
            try:
                headers = {"Connection": "close", "Content-Type": "application/json"}
                if bearer:
                    headers["Authorization"] = f"Bearer {bearer}"
                conn.request(method, path, json.dumps(body) if body else None, headers)
                response = conn.getresponse()
                return response.status, response.read()
            finally:
                conn.close()

        status, text = call("GET", "/metrics")
        assert status == 200
        match = MODEL_INFO.search(text.decode())
        assert match is not None
        assert match.group(1) == v2.sha256, "the mounted (v2) model is served"
        features = {"features": SETOSA}
        assert call("POST", "/predict", features)[0] == 401
        assert call("POST", "/predict", features, bearer="wrong")[0] == 401
        status, answer = call("POST", "/predict", features, bearer=token)
        assert status == 200, answer
        assert json.loads(answer)["prediction"] == 0
        assert call("GET", "/readyz")[0] == 200
