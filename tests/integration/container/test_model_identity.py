"""Which model an image serves: chosen by build arguments, recorded in manifest and labels.

Builds a second image with `MODEL_SEED=7` and its own `MODEL_VERSION` (layers up to the
model are shared with the suite's image, so this is a short build) and checks that it
carries a different model, and says so in its manifest, its labels and its metadata routes.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import docker
import pytest

from ..conftest import build_image, package_version

if TYPE_CHECKING:
    from .conftest import Server, ServerFactory

pytestmark = pytest.mark.container

VARIANT_TAG = "ml-model:pytest-seed7"
VARIANT_ARGS = {"MODEL_SEED": "7", "MODEL_VERSION": "2.0.0-seed7"}
LABEL = "ml-model.model.{}"


def model_manifest(docker_client: docker.DockerClient, image: str) -> dict[str, Any]:
    """The manifest of the model baked into `image` (read without starting the server)."""
    output = docker_client.containers.run(
        image,
        ["info", "--json", "/opt/model"],
        entrypoint=["iris-model"],
        network_disabled=True,
        remove=True,
    )
    manifest: dict[str, Any] = json.loads(output)
    return manifest


def model_info_sha256(metrics: str) -> str:
    """The sha256 label of the `model_info` gauge in a Prometheus exposition."""
    match = re.search(r'^(?:\w+_)?model_info\{[^}]*sha256="([0-9a-f]{64})"', metrics, re.MULTILINE)
    assert match, "no model_info sample with a sha256 label in /metrics"
    return match.group(1)


@pytest.fixture(scope="module")
def variant(image_tag: str) -> str:
    """The suite's image rebuilt with another seed and model version."""
    return build_image(VARIANT_TAG, VARIANT_ARGS)


def test_default_image_names_its_model_version(
    image_tag: str, docker_client: docker.DockerClient
) -> None:
    """Without MODEL_VERSION the model is named after the image's VERSION, in both places."""
    labels = docker_client.images.get(image_tag).labels
    manifest = model_manifest(docker_client, image_tag)
    assert manifest["model_version"] == labels[LABEL.format("version")]
    assert labels[LABEL.format("source")] == "train"
    assert labels[LABEL.format("version")] == labels["org.opencontainers.image.version"]


def test_model_seed_build_argument_changes_the_model(
    image_tag: str, variant: str, docker_client: docker.DockerClient
) -> None:
    """`--build-arg MODEL_SEED=7` bakes a different model, named MODEL_VERSION."""
    default = model_manifest(docker_client, image_tag)
    other = model_manifest(docker_client, variant)
    print(
        f"\n{image_tag}: model {default['model_version']} sha256 {default['artifact']['sha256']}"
        f"\n{variant}: model {other['model_version']} sha256 {other['artifact']['sha256']}"
    )
    assert other["artifact"]["sha256"] != default["artifact"]["sha256"]
    assert other["model_version"] == VARIANT_ARGS["MODEL_VERSION"]
    labels = docker_client.images.get(variant).labels
    assert labels[LABEL.format("version")] == VARIANT_ARGS["MODEL_VERSION"]
    assert labels[LABEL.format("seed")] == VARIANT_ARGS["MODEL_SEED"]
    # The server's own version is not the model's.
    assert labels["org.opencontainers.image.version"] == package_version()


@pytest.fixture(scope="module")
def variant_server(variant: str, start_server: ServerFactory) -> Server:
    """A running container of the variant."""
    return start_server(image=variant)


def test_the_variant_serves_its_model_and_reports_its_digest(
    variant: str, docker_client: docker.DockerClient, variant_server: Server
) -> None:
    """The running variant predicts, and `model_info` in /metrics names its model's sha256."""
    manifest = model_manifest(docker_client, variant)
    metrics = variant_server.get("/metrics").text
    assert model_info_sha256(metrics) == manifest["artifact"]["sha256"]
    predicted = variant_server.post("/predict", json={"features": [5.1, 3.5, 1.4, 0.2]})
    assert predicted.status_code == 200
    assert predicted.json()["prediction"] == 0


def test_the_variant_reports_its_model_version(variant_server: Server) -> None:
    """/v2/models/iris lists the model version; its /versions/{v} route serves that one only."""
    version = VARIANT_ARGS["MODEL_VERSION"]
    metadata = variant_server.get("/v2/models/iris").json()
    assert metadata.get("versions") == [version], metadata
    versioned = variant_server.get(f"/v2/models/iris/versions/{version}")
    assert versioned.status_code == 200, versioned.text
    assert variant_server.get("/v2/models/iris/versions/0.0.0-other").status_code == 404
