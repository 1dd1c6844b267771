"""One version everywhere: packages, OCI label, `/v2` metadata and the model_info metric.

`SETUPTOOLS_SCM_PRETEND_VERSION=1.2.3 nox -s container -- -k version` builds the image as CI
does at tag v1.2.3 and checks that every place says 1.2.3.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import docker
import pytest

if TYPE_CHECKING:
    from conftest import Server

pytestmark = pytest.mark.container

PACKAGES = ("iris-model", "inference-server")


def test_the_version_is_a_pep_440_release_or_dev_version(image_version: str) -> None:
    """What the build was given is a real version, not the untagged default or empty."""
    pep440 = r"\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?(\+[\w.]+)?"
    assert re.fullmatch(pep440, image_version), image_version
    assert image_version != "0+unknown", "the build got no VERSION build argument"


def test_both_installed_packages_have_the_image_version(
    image_tag: str, image_version: str, docker_client: docker.DockerClient
) -> None:
    """The wheels in the image were built at the version of its label (lockstep)."""
    code = "import importlib.metadata as m, sys; print(*map(m.version, sys.argv[1:]))"
    output = docker_client.containers.run(
        image_tag, ["-c", code, *PACKAGES], entrypoint="python",
        network_disabled=True, remove=True,
    )  # fmt: skip
    assert output.decode().split() == [image_version] * len(PACKAGES)


def test_v2_server_metadata_and_model_info_report_it(server: Server, image_version: str) -> None:
    """`GET /v2` and the model_info metric's version labels say the image's version."""
    assert server.get("/v2").json()["version"] == image_version
    metrics = server.get("/metrics").text
    (info,) = (line for line in metrics.splitlines() if line.startswith("inference_model_info{"))
    assert f'server_version="{image_version}"' in info
    assert f'iris_model_version="{image_version}"' in info
