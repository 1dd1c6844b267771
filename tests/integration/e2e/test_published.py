"""What `nox -s publish` pushed, deployed as production deploys it: verified, pulled by digest.

Session `delivery` runs these after `publish` (.ci/run): E2E_PUBLISHED is publish.py's
`--json`, E2E_REGISTRY the registry on the node's loopback that the cluster's containerd pulls
from (tools/local-cluster), CRANE and COSIGN the tools the session built. The production
overlay is rendered by deploy.py with the published tag and digest, production's image
reference (kiranrajsg/ml-model:TAG@sha256:...) in that registry, and `--verify` refuses
anything unsigned or re-tagged before a single object is applied.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from .support import DEPLOYMENT, ROOT, SELECTOR, SERVICE, SETOSA, run, unavailable

pytestmark = [pytest.mark.k8s, pytest.mark.published, pytest.mark.slow]

DEPLOY = ROOT / "tools" / "local-cluster" / "deploy.py"
PRODUCTION = ROOT / "deploy" / "k8s" / "overlays" / "production"
REFUSED = 3  # deploy.py's exit status for a refusal


@dataclass(frozen=True)
class Publication:
    """publish.py's record, with where this machine and the cluster find the image."""

    name: str  # as production names it: the overlay's newName
    registry: str  # where the cluster's containerd fetches that name from
    digest: str
    config_digest: str
    tested_image: str
    tags: list[str]
    public_key: Path

    @property
    def repository(self) -> str:
        """The repository as this machine reaches it."""
        return f"{self.registry}/{self.name}"


def tool(name: str) -> str:
    """A binary the session provides (CRANE, COSIGN)."""
    path = os.environ.get(name.upper())
    if not path:
        unavailable(f"{name.upper()} is not set: run `nox -s delivery`, which builds {name}")
    return path


@pytest.fixture(scope="module")
def published() -> Publication:
    """The publication under test; its repository must be the production overlay's name."""
    record, registry = os.environ.get("E2E_PUBLISHED"), os.environ.get("E2E_REGISTRY")
    if not record or not registry:
        unavailable("E2E_PUBLISHED and E2E_REGISTRY are unset: run `nox -s publish` first")
    data = json.loads(Path(record).read_text(encoding="utf-8"))
    overlay = yaml.safe_load((PRODUCTION / "kustomization.yaml").read_text(encoding="utf-8"))
    (image,) = overlay["images"]
    assert data["repository"] == f"{registry}/{image['newName']}", "published elsewhere"
    assert data["public_key"], "published keyless: nothing here can verify it"
    return Publication(
        image["newName"], registry, data["digest"], data["config_digest"],
        data["tested_image"], data["tags"], Path(data["public_key"]),
    )  # fmt: skip


def crane(*args: str) -> str:
    """Run crane against the registry (plain HTTP on loopback)."""
    return run(tool("crane"), *args, timeout=120)


def deploy(
    published: Publication, image: str, kubeconfig: str, namespace: str, *, apply: bool
) -> subprocess.CompletedProcess[str]:
    """deploy.py --verify of the production overlay for `image`, applied if `apply`."""
    args = [
        sys.executable, str(DEPLOY), image, "--overlay", str(PRODUCTION),
        "--namespace", namespace, "--verify", str(published.public_key),
        "--registry", published.registry, "--crane", tool("crane"), "--cosign", tool("cosign"),
        "--kubectl", "kubectl", *(["--apply"] if apply else []),
    ]  # fmt: skip
    return subprocess.run(
        args, capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "KUBECONFIG": kubeconfig},
    )  # fmt: skip


@pytest.fixture(scope="module")
def unsigned(published: Publication) -> str:
    """A digest in the same repository that nobody signed: the published image, relabelled."""
    tag = f"e2e-unsigned-{secrets.token_hex(3)}"
    pushed = crane(
        "mutate", f"{published.repository}@{published.digest}",
        "--label", "ml-model.e2e/unsigned=true", "--tag", f"{published.repository}:{tag}",
    ).strip()  # fmt: skip
    digest = pushed.rpartition("@")[2]
    assert digest.startswith("sha256:")
    assert digest != published.digest
    return digest


def namespace_exists(kubeconfig: str, namespace: str) -> bool:
    """Whether anything created the namespace."""
    found = subprocess.run(
        ["kubectl", "--kubeconfig", kubeconfig, "get", "namespace", namespace],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return found.returncode == 0


def test_the_registry_holds_exactly_the_tested_image(published: Publication) -> None:
    """The pushed manifest's config is, byte for byte, the config of the image the tests ran."""
    config = subprocess.run(
        [tool("crane"), "config", f"{published.repository}@{published.digest}"],
        capture_output=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    pushed = f"sha256:{hashlib.sha256(config).hexdigest()}"
    tested = run("docker", "image", "inspect", "--format", "{{.Id}}", published.tested_image)
    print(f"published {published.repository}@{published.digest} (tags {published.tags})")
    print(f"  its config {pushed}; tested image {published.tested_image}: {tested.strip()}")
    assert pushed == tested.strip() == published.config_digest


def test_an_unsigned_digest_is_refused_before_anything_is_applied(
    published: Publication, unsigned: str, cluster: Any
) -> None:
    """deploy.py --verify exits with a refusal for a digest the key never signed."""
    namespace = f"ml-model-unsigned-{secrets.token_hex(3)}"
    kubeconfig = str(cluster.kubeconfig)
    result = deploy(published, f"{published.name}@{unsigned}", kubeconfig, namespace, apply=True)
    print(f"unsigned {published.name}@{unsigned}: {result.stderr.strip()}")
    assert result.returncode == REFUSED, result.stderr
    assert "REFUSED, nothing applied" in result.stderr
    assert "no valid signature" in result.stderr
    assert not namespace_exists(kubeconfig, namespace)


def test_a_tag_that_moved_is_refused(published: Publication, unsigned: str, cluster: Any) -> None:
    """A tag verified on the published digest is refused once it points elsewhere."""
    tag = f"e2e-moving-{secrets.token_hex(3)}"
    kubeconfig = str(cluster.kubeconfig)
    namespace = f"ml-model-moved-{secrets.token_hex(3)}"
    image = f"{published.name}:{tag}@{published.digest}"
    crane("tag", f"{published.repository}@{published.digest}", tag)
    before = deploy(published, image, kubeconfig, namespace, apply=False)
    assert before.returncode == 0, before.stderr  # rendered, not applied
    crane("tag", f"{published.repository}@{unsigned}", tag)
    after = deploy(published, image, kubeconfig, namespace, apply=True)
    print(f"{image} after the tag moved: {after.stderr.strip()}")
    assert after.returncode == REFUSED, after.stderr
    assert f"tag {published.name}:{tag} moved" in after.stderr
    assert not namespace_exists(kubeconfig, namespace)


@pytest.fixture(scope="module")
def production(published: Publication, cluster: Any) -> Iterator[tuple[str, str]]:
    """The production overlay with the published tag and digest, in a namespace of its own.

    Yields (namespace, bearer token); the Secret of components/auth is created first, out of
    band, as the overlay documents. Deleted at the end.
    """
    kubeconfig = str(cluster.kubeconfig)
    namespace = f"ml-model-published-{secrets.token_hex(3)}"
    token = secrets.token_hex(16)
    kubectl = ["kubectl", "--kubeconfig", kubeconfig]
    run(*kubectl, "create", "namespace", namespace)
    try:
        run(*kubectl, "-n", namespace, "create", "secret", "generic", "ml-model-auth",
            f"--from-literal=tokens={token}")  # fmt: skip
        image = f"{published.name}:{published.tags[0]}@{published.digest}"
        result = deploy(published, image, kubeconfig, namespace, apply=True)
        print(result.stderr.strip())
        assert result.returncode == 0, result.stderr
        run(*kubectl, "-n", namespace, "rollout", "status", f"deployment/{DEPLOYMENT}",
            "--timeout=300s", timeout=320)  # fmt: skip
        yield namespace, token
    finally:
        run(*kubectl, "delete", "namespace", namespace, "--wait=true", "--timeout=180s",
            timeout=200)  # fmt: skip


def test_the_cluster_pulls_the_published_digest_from_the_registry(
    published: Publication, production: tuple[str, str], cluster: Any
) -> None:
    """Each pod runs the published digest from the registry, and the kubelet pulled it."""
    namespace, _ = production
    kubectl = ["kubectl", "--kubeconfig", str(cluster.kubeconfig), "-n", namespace]
    pods = json.loads(run(*kubectl, "get", "pods", "-l", SELECTOR, "-o", "json"))["items"]
    assert pods
    for pod in pods:
        (container,) = pod["spec"]["containers"]
        reference = f"{published.name}:{published.tags[0]}@{published.digest}"
        assert container["image"] == f"{published.registry}/{reference}"
        assert container["imagePullPolicy"] == "Always"
        (status,) = pod["status"]["containerStatuses"]
        assert status["imageID"].endswith(f"/{published.name}@{published.digest}")
    events = json.loads(run(*kubectl, "get", "events", "-o", "json"))["items"]
    pulled = [e["message"] for e in events if e.get("reason") == "Pulled"]
    for message in pulled:
        print(f"kubelet: {message}")
    assert pulled, "no Pulled event: the image did not come from the registry"
    assert all(published.digest in message for message in pulled)


def test_the_published_image_serves_the_contract(production: tuple[str, str], cluster: Any) -> None:
    """Through the Service: /predict with the token answers setosa; without it, 401."""
    namespace, token = production
    kubectl = ["kubectl", "--kubeconfig", str(cluster.kubeconfig), "-n", namespace]
    service = json.loads(run(*kubectl, "get", "service", SERVICE, "-o", "json"))
    address = (service["spec"]["clusterIP"], int(service["spec"]["ports"][0]["port"]))

    def predict(bearer: str | None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(*address, timeout=10)
        try:
            headers = {"Connection": "close", "Content-Type": "application/json"}
            if bearer:
                headers["Authorization"] = f"Bearer {bearer}"
            conn.request("POST", "/predict", json.dumps({"features": SETOSA}), headers)
            response = conn.getresponse()
            return response.status, response.read()
        except OSError as error:
            unavailable(f"the Service's ClusterIP {address} does not answer here: {error}")
        finally:
            conn.close()

    assert predict(None)[0] == 401
    status, body = predict(token)
    assert status == 200, body
    assert json.loads(body)["prediction"] == 0
