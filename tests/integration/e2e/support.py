"""Helpers of the end-to-end suite: HTTP calls, the deployed overlay, load on its Service."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import socket
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


def is_local_address(address: str) -> bool:
    """This machine has `address` (so it is the node, and ClusterIPs route from here)."""
    with socket.socket() as sock:
        try:
            sock.bind((address, 0))
        except OSError:
            return False
    return True


@dataclass
class Response:
    """A finished HTTP exchange."""

    status: int
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


def fetch(
    port: int,
    method: str,
    path: str,
    payload: Any = None,
    timeout: float = 10.0,
    *,
    host: str = "127.0.0.1",
) -> Response:
    """One request to host:port (default 127.0.0.1) on a fresh connection (no keep-alive)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
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

    def node_address(self) -> str:
        """The node's InternalIP (single-node clusters: the only node)."""
        node = json.loads(self.kubectl("get", "nodes", "-o", "json"))["items"][0]
        return next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")

    def service_routes(self) -> dict[str, tuple[str, int]]:
        """How a client reaches the Service: "ClusterIP" and, where it has one, "NodePort"."""
        service = self.get(f"service/{SERVICE}")
        port = service["spec"]["ports"][0]
        routes = {"ClusterIP": (str(service["spec"]["clusterIP"]), int(port["port"]))}
        if port.get("nodePort"):
            routes["NodePort"] = (self.node_address(), int(port["nodePort"]))
        return routes

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
    seconds: float = 0.0
    answered_at: list[float] = field(default_factory=list)  # monotonic times of the 200s

    @property
    def failed(self) -> int:
        """Number of failed requests."""
        return sum(self.failures.values())

    def ok_between(self, start: float, end: float = float("inf")) -> int:
        """Successful requests answered between two monotonic times."""
        return sum(start <= t <= end for t in self.answered_at)

    def summary(self) -> str:
        """One line for the test output."""
        rate = (self.ok + self.failed) / self.seconds if self.seconds else 0.0
        return (
            f"{self.ok + self.failed} requests in {self.seconds:.1f}s ({rate:.0f}/s): "
            f"{self.ok} ok, {self.failed} failed {dict(self.failures)}"
        )


class ServiceLoad:
    """Bounded load on one address of the Service (its ClusterIP or a NodePort).

    Each request opens a new connection, so kube-proxy picks an endpoint for each one; the
    client never learns which pod answered, exactly like any client of the Service. Nothing
    is retried: every failed request counts. It stops by itself after `max_requests` or
    `max_seconds`, whichever comes first.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        workers: int = 2,
        pause: float = 0.01,
        max_requests: int = 20_000,
        max_seconds: float = 300.0,
    ) -> None:
        self.host, self.port = host, port
        self.workers = workers
        self.pause = pause
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.result = LoadResult()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = 0.0

    def _work(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                if self.result.ok + self.result.failed >= self.max_requests:
                    return
            try:
                response = fetch(
                    self.port, "POST", "/predict", {"features": SETOSA}, host=self.host
                )
                ok = response.status == 200 and response.json().get("prediction") == 0
                reason = "" if ok else f"HTTP {response.status}"
            except (OSError, http.client.HTTPException, ValueError) as error:
                ok, reason = False, type(error).__name__
            with self._lock:
                if ok:
                    self.result.ok += 1
                    self.result.answered_at.append(time.monotonic())
                else:
                    self.result.failures[reason] += 1
            if self.pause:
                time.sleep(self.pause)

    def __enter__(self) -> ServiceLoad:
        self._started = time.monotonic()
        for _ in range(self.workers):
            worker = threading.Thread(target=self._work, daemon=True)
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
