"""Helpers of the end-to-end suite: HTTP calls, the deployed overlay, kube-proxy-like load."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest
from local_http import free_port  # tests/support, on sys.path via the pytest config

ROOT = Path(__file__).resolve().parents[3]
OVERLAY = ROOT / "deploy" / "k8s" / "overlays" / "local"
DEPLOYMENT = "ml-model"
CONTAINER = "ml-model"
SERVICE = "ml-model-service"
PORT = 5000
SELECTOR = "app.kubernetes.io/name=ml-model,app.kubernetes.io/instance=ml-model"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
PROVIDER_BINARIES = {
    "k3d": "k3d",
    "kind": "kind",
    "minikube": "minikube",
    "minikube-docker": "minikube",
    "minikube-kvm2": "minikube",
}
SETOSA = [5.1, 3.5, 1.4, 0.2]

Json = dict[str, Any]


def unavailable(message: str) -> NoReturn:
    """Skip on a developer machine; fail in CI, where the e2e suite must run."""
    if IN_CI:
        pytest.fail(f"CI=true: {message}", pytrace=False)
    pytest.skip(message)


@dataclass
class Response:
    """A finished HTTP exchange."""

    status: int
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


def fetch(
    port: int, method: str, path: str, payload: Any = None, timeout: float = 10.0
) -> Response:
    """One request to 127.0.0.1:port on a fresh connection (no keep-alive)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Connection": "close"}
        body = None
        if payload is not None:
            body = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return Response(response.status, response.read())
    finally:
        conn.close()


# --------------------------------------------------------------------------- kubectl


def run(*args: str, stdin: bytes | None = None, timeout: float = 300) -> str:
    result = subprocess.run(
        list(args), input=stdin, capture_output=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} failed ({result.returncode}): {result.stderr.decode()[-2000:]}"
        )
    return result.stdout.decode()


def split_image(image: str) -> tuple[str, str]:
    """`name[:tag]` -> (name, tag), minding registry ports (`host:5000/name:tag`)."""
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:
        return image, "latest"
    return name, tag


# --------------------------------------------------------------------------- the deployment


@dataclass
class Deployed:
    """overlays/local applied into its own namespace, with helpers to inspect it."""

    cluster: Any
    namespace: str
    manifest: Path
    objects: list[Json]
    image: str
    deleted: bool = False

    # -- kubectl -------------------------------------------------------------------------
    def kubectl(self, *args: str, timeout: float = 120) -> str:
        """Run kubectl against the cluster (list arguments, no shell), return stdout."""
        return run("kubectl", "--kubeconfig", str(self.cluster.kubeconfig), *args, timeout=timeout)

    def get(self, *args: str) -> Json:
        """`kubectl get ARGS -n NAMESPACE -o json`, parsed."""
        return dict(json.loads(self.kubectl("get", *args, "-n", self.namespace, "-o", "json")))

    # -- reading the state ---------------------------------------------------------------
    def spec(self, kind: str) -> Json:
        """The rendered (applied) object of `kind`."""
        return next(obj for obj in self.objects if obj["kind"] == kind)

    @property
    def grace_seconds(self) -> int:
        """The applied Deployment's terminationGracePeriodSeconds."""
        return int(
            self.spec("Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        )

    @property
    def pre_stop_seconds(self) -> int:
        """The preStop pause from the applied Deployment."""
        ctr = self.spec("Deployment")["spec"]["template"]["spec"]["containers"][0]
        return int(ctr["lifecycle"]["preStop"]["sleep"]["seconds"])

    def pods(self) -> list[Json]:
        """The app's pods (terminating ones included)."""
        return list(self.get("pods", "-l", SELECTOR)["items"])

    def ready_pods(self) -> list[str]:
        """Names of Ready pods that are not terminating."""
        return [
            pod["metadata"]["name"]
            for pod in self.pods()
            if not pod["metadata"].get("deletionTimestamp") and pod_ready(pod)
        ]

    def endpoints(self) -> dict[str, bool]:
        """Pod name -> `ready` for every endpoint of the Service's EndpointSlices."""
        slices = self.get("endpointslices", "-l", f"kubernetes.io/service-name={SERVICE}")
        found: dict[str, bool] = {}
        for item in slices["items"]:
            for endpoint in item.get("endpoints") or []:
                ref = endpoint.get("targetRef") or {}
                if ref.get("kind") == "Pod":
                    ready = (endpoint.get("conditions") or {}).get("ready")
                    found[ref["name"]] = ready is not False
        return found

    # -- waiting -------------------------------------------------------------------------
    def rollout_status(self, timeout: int = 300) -> None:
        """Block until the Deployment's rollout completed."""
        self.kubectl(
            "rollout", "status", f"deployment/{DEPLOYMENT}", "-n", self.namespace,
            f"--timeout={timeout}s", timeout=timeout + 10,
        )  # fmt: skip

    def wait_settled(self, timeout: float = 300) -> list[str]:
        """Wait until no pod terminates, every pod is Ready and each is an endpoint."""
        self.rollout_status(int(timeout))
        deadline = time.monotonic() + timeout
        while True:
            pods = self.pods()
            names = [pod["metadata"]["name"] for pod in pods]
            settled = (
                pods
                and all(
                    pod_ready(pod) and not pod["metadata"].get("deletionTimestamp") for pod in pods
                )
                and self.endpoints() == dict.fromkeys(names, True)
            )
            if settled:
                return names
            if time.monotonic() > deadline:
                raise AssertionError(f"pods did not settle in {timeout}s:\n{self.diagnostics()}")
            time.sleep(1)

    def wait_gone(self, names: set[str], timeout: float) -> None:
        """Wait until none of the named pods exists any more."""
        deadline = time.monotonic() + timeout
        while {pod["metadata"]["name"] for pod in self.pods()} & names:
            if time.monotonic() > deadline:
                raise AssertionError(f"pods {sorted(names)} still exist after {timeout}s")
            time.sleep(1)

    # -- traffic -------------------------------------------------------------------------
    @contextlib.contextmanager
    def port_forward(self, target: str) -> Iterator[int]:
        """`kubectl port-forward TARGET` on a free 127.0.0.1 port (pytest-kubernetes)."""
        port = free_port()
        with self.cluster.port_forwarding(target, port, PORT, namespace=self.namespace, timeout=60):
            yield port

    # -- teardown ------------------------------------------------------------------------
    def delete(self, timeout: int = 180) -> None:
        """Delete everything the overlay created and wait for it to be gone."""
        self.kubectl(
            "delete", "-f", str(self.manifest), "--ignore-not-found", "--wait=true",
            f"--timeout={timeout}s", timeout=timeout + 10,
        )  # fmt: skip
        self.deleted = True

    def diagnostics(self) -> str:
        """What a failing run needs to be understood: objects, events and logs."""
        parts = []
        commands = [
            ("get", "all,endpointslices,hpa,pdb", "-n", self.namespace, "-o", "wide"),
            ("get", "events", "-n", self.namespace, "--sort-by=.lastTimestamp"),
            ("logs", "-n", self.namespace, "-l", SELECTOR, "--tail=40", "--prefix",
             "--all-containers", "--ignore-errors"),
        ]  # fmt: skip
        for command in commands:
            try:
                parts.append(f"$ kubectl {' '.join(command)}\n{self.kubectl(*command, timeout=30)}")
            except (RuntimeError, subprocess.TimeoutExpired) as error:
                parts.append(f"$ kubectl {' '.join(command)}\n{error}")
        return "\n".join(parts)


def pod_ready(pod: Json) -> bool:
    """The pod's Ready condition is True."""
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def render_local_overlay(directory: Path, namespace: str, image: str) -> str:
    """`kubectl kustomize` of overlays/local with the namespace and the image replaced."""
    name, tag = split_image(image)
    relative = os.path.relpath(OVERLAY, directory)
    (directory / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        f"namespace: {namespace}\n"
        f"resources: [{relative}]\n"
        f"images: [{{name: ml-model, newName: {name}, newTag: {tag!r}}}]\n",
        encoding="utf-8",
    )
    return run("kubectl", "kustomize", str(directory))


@contextlib.contextmanager
def deploy_local_overlay(cluster: Any, image: str, workdir: Path) -> Iterator[Deployed]:
    """Apply overlays/local with `image` into a fresh namespace, wait, and delete it after."""
    import yaml  # noqa: PLC0415

    namespace = f"ml-model-e2e-{secrets.token_hex(3)}"
    rendered = render_local_overlay(workdir, namespace, image)
    manifest = workdir / "rendered.yaml"
    manifest.write_text(rendered, encoding="utf-8")
    objects = [doc for doc in yaml.safe_load_all(rendered) if doc]
    deployed = Deployed(cluster, namespace, manifest, objects, image)
    print(f"deploying overlays/local into namespace {namespace} with image {image}")
    cluster.apply(manifest)
    try:
        try:
            deployed.wait_settled()
        except (AssertionError, RuntimeError, subprocess.TimeoutExpired) as error:
            pytest.fail(f"overlays/local did not roll out: {error}\n{deployed.diagnostics()}")
        yield deployed
    finally:
        if not deployed.deleted:
            deployed.delete()


# --------------------------------------------------------------------------- load


@dataclass
class LoadResult:
    """What a load run saw."""

    ok: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    per_pod: Counter[str] = field(default_factory=Counter)
    after_removal: int = 0  # requests sent to a pod already out of the ready set
    seconds: float = 0.0

    @property
    def failed(self) -> int:
        """Number of failed requests."""
        return sum(self.failures.values())

    def summary(self) -> str:
        """One line for the test output."""
        return (
            f"{self.ok + self.failed} requests in {self.seconds:.1f}s: {self.ok} ok, "
            f"{self.failed} failed {dict(self.failures)}; per pod {dict(self.per_pod)}; "
            f"{self.after_removal} sent to pods already out of the ready set"
        )


class EndpointLoad:
    """Bounded load spread over the Service's ready endpoints, the way kube-proxy spreads it.

    The CI cluster has no kube-proxy, so neither the ClusterIP nor a NodePort answers, and
    `port-forward svc/...` pins a single pod chosen when it starts: it cannot show whether
    traffic survives that pod going away. This client plays kube-proxy instead. It polls
    the Service's EndpointSlices, keeps one `kubectl port-forward pod/...` (on 127.0.0.1)
    per ready endpoint, and sends each request to the next one. Like a real proxy it learns
    of an endpoint's removal late: a pod stays in rotation for `lag` seconds after it left
    the ready set, so requests do reach pods that are already terminating. Those must
    succeed too; that is what the preStop pause is for. Nothing is retried: every failed
    request counts.
    """

    def __init__(
        self,
        deployed: Deployed,
        *,
        workers: int = 2,
        lag: float = 2.0,
        refresh: float = 0.5,
        max_requests: int = 20_000,
        max_seconds: float = 300.0,
    ) -> None:
        self.deployed = deployed
        self.workers = workers
        self.lag = lag
        self.refresh = refresh
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.result = LoadResult()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._forwards: dict[str, tuple[Any, int]] = {}  # pod -> (PortForwarding, port)
        self._opening: set[str] = set()
        self._last_ready: dict[str, float] = {}
        self._routable: list[tuple[str, int, bool]] = []  # (pod, port, still ready)
        self._threads: list[threading.Thread] = []
        self._watch_errors: list[str] = []

    # -- endpoint watcher ----------------------------------------------------------------
    def _open(self, pod: str) -> None:
        port = free_port()
        forward = self.deployed.cluster.port_forwarding(
            f"pod/{pod}", port, PORT, namespace=self.deployed.namespace, timeout=30
        )
        try:
            forward.start()
        except RuntimeError as error:
            self._watch_errors.append(f"port-forward to {pod}: {error}")
            forward = None
        with self._lock:
            self._opening.discard(pod)
            if forward is not None:
                self._forwards[pod] = (forward, port)

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                endpoints = self.deployed.endpoints()
            except (RuntimeError, subprocess.TimeoutExpired) as error:
                self._watch_errors.append(str(error))
                endpoints = {}
            now = time.monotonic()
            with self._lock:
                for pod, ready in endpoints.items():
                    if ready:
                        self._last_ready[pod] = now
                        if pod not in self._forwards and pod not in self._opening:
                            self._opening.add(pod)
                            threading.Thread(target=self._open, args=(pod,), daemon=True).start()
                self._routable = [
                    (pod, port, endpoints.get(pod, False))
                    for pod, (_, port) in sorted(self._forwards.items())
                    if now - self._last_ready.get(pod, 0.0) <= self.lag
                ]
            self._stop.wait(self.refresh)

    # -- request workers -----------------------------------------------------------------
    def _work(self, offset: int) -> None:
        turn = offset
        while not self._stop.is_set():
            with self._lock:
                targets = list(self._routable)
                if self.result.ok + self.result.failed >= self.max_requests:
                    return
            if not targets:
                self._record(None, False, "no ready endpoint")
                time.sleep(0.1)
                continue
            pod, port, still_ready = targets[turn % len(targets)]
            turn += 1
            try:
                response = fetch(port, "POST", "/predict", {"features": SETOSA})
                ok = response.status == 200 and response.json().get("prediction") == 0
                reason = "" if ok else f"HTTP {response.status}"
            except (OSError, http.client.HTTPException, ValueError) as error:
                ok, reason = False, type(error).__name__
            self._record(pod, ok, reason, after_removal=not still_ready)
            time.sleep(0.01)

    def _record(self, pod: str | None, ok: bool, reason: str, after_removal: bool = False) -> None:
        with self._lock:
            if ok:
                self.result.ok += 1
            else:
                self.result.failures[f"{reason} ({pod})" if pod else reason] += 1
            if pod:
                self.result.per_pod[pod] += 1
                self.result.after_removal += after_removal

    # -- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> EndpointLoad:
        self._started = time.monotonic()
        watcher = threading.Thread(target=self._watch, daemon=True)
        watcher.start()
        self._threads.append(watcher)
        deadline = time.monotonic() + 60
        while not self._routable:
            if time.monotonic() > deadline:
                self._stop.set()
                raise AssertionError(f"no endpoint became routable: {self._watch_errors}")
            time.sleep(0.2)
        for offset in range(self.workers):
            worker = threading.Thread(target=self._work, args=(offset,), daemon=True)
            worker.start()
            self._threads.append(worker)
        # Bounded even if the test forgets to stop it.
        self._timer = threading.Timer(self.max_seconds, self._stop.set)
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._timer.cancel()
        for thread in self._threads:
            thread.join(timeout=30)
        self.result.seconds = time.monotonic() - self._started
        for forward, _ in self._forwards.values():
            with contextlib.suppress(RuntimeError):
                forward.stop()
