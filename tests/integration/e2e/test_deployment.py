"""overlays/local on a real cluster: Service, DNS, security, drain, rollout, autoscaler, cleanup.

The tests run in file order on one deployment; the last one deletes it. Traffic takes the
paths real clients take: the Service's ClusterIP (from the node) or NodePort, and in-cluster
DNS from a pod.
"""

from __future__ import annotations

import contextlib
import functools
import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .support import (
    CONTAINER,
    DEPLOYMENT,
    SERVICE,
    SETOSA,
    Deployed,
    ServiceLoad,
    fetch,
    pod_ready,
    run,
)

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

UID = 10001
V2_TAG = "ml-model:e2e-v2"


def test_rollout_is_complete(app: Deployed) -> None:
    """Every pod runs the test image, is Ready and is an endpoint of the Service."""
    deployment = app.get(f"deployment/{DEPLOYMENT}")
    assert "replicas" not in app.spec("Deployment")["spec"], "the HPA owns the count"
    status = deployment["status"]
    assert status["readyReplicas"] == status["replicas"] >= 1
    pods = app.pods()
    for pod in pods:
        assert pod["spec"]["containers"][0]["image"] == app.image
        assert pod_ready(pod)
    assert set(app.endpoints()) == {pod["metadata"]["name"] for pod in pods}


@pytest.mark.parametrize("route", ["ClusterIP", "NodePort"])
def test_contract_through_the_service(
    app: Deployed, service_routes: dict[str, tuple[str, int]], on_node: bool, route: str
) -> None:
    """GET /, POST /predict and V2 infer answer through the Service's ClusterIP and NodePort."""
    if route == "ClusterIP" and not on_node:
        # Not a missing cluster part: test_a_pod_reaches_the_service_by_its_dns_name still
        # goes through the ClusterIP, from inside the cluster.
        pytest.skip("the tests do not run on the cluster's node, where ClusterIPs route")
    assert route in service_routes, f"overlays/local exposes no {route}"
    host, port = service_routes[route]
    fetch_ = functools.partial(fetch, host=host)

    root = fetch_(port, "GET", "/")
    assert (root.status, root.body.strip()) == (200, b"OK")

    predicted = fetch_(port, "POST", "/predict", {"features": SETOSA})
    assert predicted.status == 200, predicted.body
    prediction = predicted.json()["prediction"]
    assert isinstance(prediction, int)
    assert prediction == 0  # setosa

    infer = fetch_(
        port,
        "POST",
        "/v2/models/iris/infer",
        {
            "id": "e2e-1",
            "inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": SETOSA}],
        },
    )
    assert infer.status == 200, infer.body
    body = infer.json()
    assert body["model_name"] == "iris"
    assert body["id"] == "e2e-1"
    integer_outputs = [out for out in body["outputs"] if out["datatype"] == "INT64"]
    assert integer_outputs, body
    assert integer_outputs[0]["data"] in ([0], [[0]])

    bad = fetch_(port, "POST", "/predict", {"features": [1, 2]})
    assert 400 <= bad.status < 500
    assert "error" in bad.json()

    for path in ("/healthz", "/readyz"):
        assert fetch_(port, "GET", path).status == 200, path
    metrics = fetch_(port, "GET", "/metrics")
    assert metrics.status == 200
    assert b"# TYPE" in metrics.body


# Run in a pod: resolve the Service's name, POST the seed contract's request to it by name.
DNS_CLIENT = """
import json, socket, sys, urllib.request
name, port, features = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
infos = socket.getaddrinfo(name, port, proto=socket.IPPROTO_TCP)
request = urllib.request.Request(
    f"http://{name}:{port}/predict", data=json.dumps({"features": features}).encode(),
    headers={"Content-Type": "application/json"})
with urllib.request.urlopen(request, timeout=10) as response:
    print(json.dumps({"addresses": sorted({info[4][0] for info in infos}),
                      "status": response.status, "body": json.load(response),
                      "resolv_conf": open("/etc/resolv.conf").read()}))
"""


def test_a_pod_reaches_the_service_by_its_dns_name(app: Deployed) -> None:
    """A pod resolves ml-model-service.<namespace>.svc.cluster.local; /predict answers there.

    The client is the app's own image (it has Python), in a pod that satisfies the
    namespace's restricted Pod Security, so the lookup goes through the pod's resolv.conf
    (kubelet's clusterDNS, CoreDNS behind the kube-dns Service) and the request through the
    Service, both via kube-proxy.
    """
    service = app.get(f"service/{SERVICE}")
    fqdn = f"{SERVICE}.{app.namespace}.svc.cluster.local"
    port = service["spec"]["ports"][0]["port"]
    name = "e2e-dns-client"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": app.namespace,
            "labels": {"app.kubernetes.io/name": "ml-model-e2e-client"},
        },
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": UID,
                "runAsGroup": UID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "client",
                    "image": app.image,
                    "imagePullPolicy": "Never",
                    "command": ["python", "-c", DNS_CLIENT, fqdn, str(port), json.dumps(SETOSA)],
                    "resources": {
                        "requests": {"cpu": "10m", "memory": "64Mi"},
                        "limits": {"cpu": "500m", "memory": "128Mi"},
                    },
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }
    manifest = app.manifest.with_name("dns-client.json")
    manifest.write_text(json.dumps(pod), encoding="utf-8")
    app.kubectl("apply", "-f", str(manifest))
    try:
        deadline = time.monotonic() + 180
        finished = {"Succeeded", "Failed"}
        while (phase := app.get(f"pod/{name}")["status"].get("phase")) not in finished:
            assert time.monotonic() < deadline, f"client pod still {phase} after 180s"
            time.sleep(1)
        logs = app.kubectl("logs", f"pod/{name}", "-n", app.namespace)
        assert phase == "Succeeded", logs
    finally:
        app.kubectl("delete", "-f", str(manifest), "--ignore-not-found", "--wait=false")
    seen = json.loads(logs.strip().splitlines()[-1])
    print(f"{fqdn} -> {seen['addresses']}; POST /predict -> {seen['status']} {seen['body']}")
    print("pod resolv.conf:", " | ".join(seen["resolv_conf"].strip().splitlines()))
    assert seen["addresses"] == [service["spec"]["clusterIP"]]
    assert seen["status"] == 200
    assert seen["body"]["prediction"] == 0  # setosa


# Reads uid/gid, the root mount's options and tries to write to / and to /tmp.
PROBE = """
import json, os
mounts = [line.split() for line in open("/proc/self/mounts")]
root_options = [m[3] for m in mounts if m[1] == "/"][-1].split(",")
def attempt(path):
    try:
        with open(path, "w") as stream:
            stream.write("x")
        os.remove(path)
        return "written"
    except OSError as error:
        return error.strerror
print(json.dumps({"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(),
                  "root_options": root_options, "root_write": attempt("/e2e-probe"),
                  "tmp_write": attempt("/tmp/e2e-probe")}))
"""


def test_pods_run_as_non_root_with_read_only_root(app: Deployed) -> None:
    """Inside each pod: uid/gid 10001, / mounted read-only, /tmp writable; PSS rejects root."""
    for name in app.ready_pods():
        out = app.kubectl(
            "exec", name, "-n", app.namespace, "-c", CONTAINER, "--", "python", "-c", PROBE
        )
        seen = json.loads(out.strip().splitlines()[-1])
        print(name, seen)
        assert (seen["uid"], seen["euid"], seen["gid"]) == (UID, UID, UID)
        assert "ro" in seen["root_options"]
        assert seen["root_write"] != "written"
        assert seen["tmp_write"] == "written"
        pod = app.get(f"pod/{name}")
        ctx = pod["spec"]["containers"][0]["securityContext"]
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["allowPrivilegeEscalation"] is False
        assert "token" not in json.dumps(pod["spec"].get("volumes", []))

    # The namespace's Pod Security admission refuses a pod without the restricted context
    # (server-side dry run: nothing is created).
    refused = subprocess.run(
        [
            "kubectl", "--kubeconfig", str(app.cluster.kubeconfig), "run", "e2e-root-probe",
            "-n", app.namespace, f"--image={app.image}", "--restart=Never",
            "--image-pull-policy=Never", "--dry-run=server",
        ],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert refused.returncode != 0, refused.stdout
    assert "PodSecurity" in refused.stderr, refused.stderr


@contextlib.contextmanager
def _watch_pod(app: Deployed, name: str, events: list[tuple[float, str, Any]]) -> Iterator[None]:
    """Stream `kubectl get pod NAME --watch` events into `events` as (time, type, pod)."""
    process = subprocess.Popen(
        [
            "kubectl", "--kubeconfig", str(app.cluster.kubeconfig), "get", f"pod/{name}",
            "-n", app.namespace, "--watch", "--output-watch-events", "-o", "json",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip

    def pump() -> None:
        decoder = json.JSONDecoder()
        buffer = ""
        assert process.stdout is not None
        for line in process.stdout:
            buffer += line
            with contextlib.suppress(ValueError):
                event, end = decoder.raw_decode(buffer.strip())
                buffer = buffer.strip()[end:]
                events.append((time.monotonic(), event["type"], event["object"]))

    pumper = threading.Thread(target=pump, daemon=True)
    pumper.start()
    try:
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)
        pumper.join(timeout=10)
        assert process.stdout is not None
        process.stdout.close()


def _secs(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f}s"


def test_pod_leaves_rotation_and_keeps_serving_while_draining(app: Deployed) -> None:
    """A deleted pod is an endpoint no more at once, still answers through preStop, then goes.

    Timeline of one `kubectl delete pod` (grace from the manifest): the EndpointSlice marks
    it not ready within a second or two; the pod keeps answering requests (through a
    port-forward to it) for the whole preStop pause; its Ready condition turns False
    before the object disappears; it is gone well before the grace period ends.
    """
    app.wait_settled()
    name = app.ready_pods()[0]
    pre_stop, grace = app.pre_stop_seconds, app.grace_seconds
    events: list[tuple[float, str, Any]] = []
    probes: list[tuple[float, bool]] = []
    stop = threading.Event()
    with app.port_forward(f"pod/{name}") as port:
        assert fetch(port, "GET", "/").status == 200

        def probe() -> None:
            while not stop.is_set():
                try:
                    ok = fetch(port, "GET", "/", timeout=3).status == 200
                except OSError:
                    ok = False
                probes.append((time.monotonic(), ok))
                stop.wait(0.25)

        prober = threading.Thread(target=probe, daemon=True)
        prober.start()
        with _watch_pod(app, name, events):
            time.sleep(1)
            started = time.monotonic()
            app.kubectl("delete", "pod", name, "-n", app.namespace, "--wait=false")
            out_of_rotation = None
            deadline = started + grace + 30
            while time.monotonic() < deadline and not any(e[1] == "DELETED" for e in events):
                if out_of_rotation is None and app.endpoints().get(name) is not True:
                    out_of_rotation = time.monotonic() - started
                time.sleep(0.5)
        stop.set()
        prober.join(timeout=10)

    gone = next((t - started for t, kind, _ in events if kind == "DELETED"), None)
    not_ready = next(
        (t - started for t, _, pod in events if t >= started and not pod_ready(pod)), None
    )
    served = [t - started for t, ok in probes if ok and t >= started]
    last_served = max(served, default=0.0)
    during_pause = [ok for t, ok in probes if started <= t <= started + pre_stop - 1]
    print(
        f"pod {name}: preStop {pre_stop}s, grace {grace}s; after the delete: out of rotation "
        f"at {_secs(out_of_rotation)}, last answer at {last_served:.1f}s, Ready=False at "
        f"{_secs(not_ready)}, gone at {_secs(gone)}; {len(during_pause)} requests during the "
        f"pause, {during_pause.count(False)} failed"
    )
    assert out_of_rotation is not None
    assert out_of_rotation < pre_stop
    assert during_pause, "no request was sent during the preStop pause"
    assert all(during_pause), "the pod must keep serving through preStop"
    assert last_served >= out_of_rotation
    assert gone is not None, f"pod not deleted within {grace + 30}s"
    assert gone <= grace + 10
    assert not_ready is not None
    assert not_ready <= gone
    app.wait_settled()


def _second_image(app: Deployed, load_image: Callable[[str], bool]) -> str | None:
    """Tag the test image as V2_TAG and load it; None when images cannot be loaded."""
    if app.image == V2_TAG:
        return None
    try:
        run("docker", "tag", app.image, V2_TAG)
    except (RuntimeError, FileNotFoundError) as error:
        print(f"cannot tag {V2_TAG} ({error}); rolling out a restart instead")
        return None
    if not load_image(V2_TAG):
        return None
    return V2_TAG


def _rollout_under_load(
    app: Deployed, service_load: Callable[..., ServiceLoad], what: str, change: Callable[[], None]
) -> ServiceLoad:
    """Apply `change` under load on the Service; keep the load on until the old pods are gone.

    Only old pods exist before the change and only new ones once the old are gone, so
    answers in those two spans show that each generation served through the Service.
    """
    before = {pod["metadata"]["name"] for pod in app.pods()}
    with service_load() as load:
        time.sleep(3)
        changed_at = time.monotonic()
        change()
        app.rollout_status()
        app.wait_gone(before, timeout=app.grace_seconds + 30)
        old_gone_at = time.monotonic()
        time.sleep(3)
    after = set(app.wait_settled())
    result = load.result
    print(
        f"{what} through the Service: {result.summary()}; {result.ok_between(0, changed_at)} "
        f"answered before the change, {result.ok_between(old_gone_at)} after the old pods "
        f"were gone; pods {sorted(before)} -> {sorted(after)}"
    )
    assert before.isdisjoint(after)
    assert result.ok >= 50, "too little traffic to prove anything"
    assert result.failed == 0, result.summary()
    assert result.ok_between(0, changed_at), "the old pods never answered"
    assert result.ok_between(old_gone_at), "the new pods never answered"
    return load


def test_rolling_update_and_rollback_under_load_drop_nothing(
    app: Deployed,
    service_load: Callable[..., ServiceLoad],
    load_image: Callable[[str], bool],
) -> None:
    """v1 -> v2 and `rollout undo` back, each under load on the Service: 0 failed requests."""
    app.wait_settled()
    v2 = _second_image(app, load_image)
    target = f"deployment/{DEPLOYMENT}"

    def update() -> None:
        if v2 is None:  # same image: a restart is still a full rolling update
            app.kubectl("rollout", "restart", target, "-n", app.namespace)
        else:
            app.kubectl("set", "image", target, f"{CONTAINER}={v2}", "-n", app.namespace)

    try:
        _rollout_under_load(app, service_load, "rolling update", update)
        if v2 is not None:
            assert {p["spec"]["containers"][0]["image"] for p in app.pods()} == {v2}

        _rollout_under_load(
            app,
            service_load,
            "rollback",
            lambda: app.kubectl("rollout", "undo", target, "-n", app.namespace),
        )
        assert {p["spec"]["containers"][0]["image"] for p in app.pods()} == {app.image}
    finally:
        if v2 is not None:  # only the extra tag goes; the image stays
            with contextlib.suppress(RuntimeError, FileNotFoundError):
                run("docker", "rmi", v2)


def test_hpa_targets_the_deployment(app: Deployed) -> None:
    """The HPA exists, targets the Deployment and holds it within its bounds."""
    hpa = app.get("hpa/ml-model")
    assert hpa["spec"]["scaleTargetRef"]["name"] == DEPLOYMENT
    low, high = hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]
    replicas = app.get(f"deployment/{DEPLOYMENT}")["spec"]["replicas"]
    assert low <= replicas <= high


def test_hpa_reads_cpu_metrics(app: Deployed) -> None:
    """The resource metrics API is served and the HPA sees the pods' CPU utilisation."""
    try:
        app.kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1")
    except RuntimeError as error:
        pytest.fail(
            f"metrics.k8s.io is not served, so no HPA can scale: the cluster needs a metrics "
            f"server (tools/local-cluster starts one; minikube: `addons enable "
            f"metrics-server`): {error}"
        )
    deadline = time.monotonic() + 180
    while True:
        status = app.get("hpa/ml-model")["status"]
        current = status.get("currentMetrics") or []
        active = any(
            c["type"] == "ScalingActive" and c["status"] == "True"
            for c in status.get("conditions", [])
        )
        if (
            active
            and current
            and current[0]["resource"]["current"].get("averageUtilization") is not None
        ):
            print("HPA sees", current[0]["resource"]["current"])
            return
        assert time.monotonic() < deadline, f"HPA never read CPU metrics: {status}"
        time.sleep(5)


def _wait_until(what: str, timeout: float, condition: Callable[[], bool]) -> float:
    """Poll `condition` every second; return the monotonic time it first held."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not {what} within {timeout:.0f}s"
        time.sleep(1)
    return time.monotonic()


def test_hpa_scales_out_under_load_and_back_in(
    app: Deployed, service_load: Callable[..., ServiceLoad]
) -> None:
    """Load on the Service scales the Deployment out from minReplicas; without it, back in.

    Load runs only until the scale-out is decided and its pod is Ready (bounded anyway).
    Scale-in waits for the HPA's scale-down window (the overlay shortens it).
    """
    spec = app.get("hpa/ml-model")["spec"]
    low, high = spec["minReplicas"], spec["maxReplicas"]
    assert high > low, "the HPA has no room to scale out"

    def replicas() -> tuple[int, int]:
        deployment = app.get(f"deployment/{DEPLOYMENT}")
        return deployment["spec"]["replicas"], deployment["status"].get("readyReplicas", 0)

    # The rollouts' load may have scaled it out already: start from the minimum.
    _wait_until("back at minReplicas before the test", 300, lambda: replicas()[0] == low)
    app.wait_settled()
    with service_load(workers=3, pause=0, max_seconds=300) as load:
        started = time.monotonic()
        decided = _wait_until("scaled out", 240, lambda: replicas()[0] > low)
        ready = _wait_until("scaled out and Ready", 120, lambda: replicas()[1] > low)
        out_to = replicas()[0]
    stopped = time.monotonic()
    scaled_in = _wait_until("scaled back in", 300, lambda: replicas()[0] == low)
    settled = len(app.wait_settled())
    gone = time.monotonic()
    print(
        f"HPA {low}..{high} replicas: under load scaled out to {out_to} after "
        f"{decided - started:.0f}s (new pod Ready after {ready - started:.0f}s); after the load "
        f"stopped scaled in to {low} after {scaled_in - stopped:.0f}s (extra pods gone after "
        f"{gone - stopped:.0f}s); load: {load.result.summary()}"
    )
    assert settled == low
    assert load.result.failed == 0, load.result.summary()


def test_deleting_the_overlay_leaves_nothing(app: Deployed) -> None:
    """`kubectl delete -f` of the rendered overlay removes every object, pods and namespace."""
    app.delete()
    for obj in app.objects:
        kind, name = obj["kind"], obj["metadata"]["name"]
        scope = ["-n", obj["metadata"]["namespace"]] if "namespace" in obj["metadata"] else []
        left = app.kubectl("get", kind, name, *scope, "--ignore-not-found", "-o", "name")
        assert left.strip() == "", f"{kind}/{name} survived"
    # Namespace deletion also removes what the controllers made (ReplicaSets, pods,
    # EndpointSlices); wait for it to finish rather than trusting it.
    deadline = time.monotonic() + 180
    while app.kubectl(
        "get", "namespace", app.namespace, "--ignore-not-found", "-o", "name"
    ).strip():
        assert time.monotonic() < deadline, "namespace still terminating"
        time.sleep(2)
    leftovers = app.kubectl(
        "get", "pods,replicasets,endpointslices,services", "-A",
        "-l", "app.kubernetes.io/name=ml-model", "-o", "json",
    )  # fmt: skip
    mine = [
        item["metadata"]["name"]
        for item in json.loads(leftovers)["items"]
        if item["metadata"].get("namespace") == app.namespace
    ]
    assert mine == []
