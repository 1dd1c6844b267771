"""The image's configuration, as Docker sees it (no container needed)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.utils.build import exclude_paths

pytestmark = pytest.mark.container

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
SIZE_BUDGET_MB = 420  # 3.12-slim base ~125 MB + venv ~215 MB; growth past this is a regression
OCI_LABELS = ("source", "revision", "version", "created", "title", "licenses", "base.name")


@pytest.fixture(scope="module")
def config(image_tag: str, docker_client: docker.DockerClient) -> dict[str, Any]:
    attrs: dict[str, Any] = docker_client.images.get(image_tag).attrs
    return attrs


def test_runs_as_uid_10001_without_a_shell_entrypoint(config: dict[str, Any]) -> None:
    cfg = config["Config"]
    assert cfg["User"] == "10001:10001"
    # Exec form, no shell: SIGTERM goes straight to the Gunicorn master.
    assert cfg["Entrypoint"] == ["inference-server"]
    assert not cfg["Cmd"]
    assert set(cfg["ExposedPorts"]) == {"5000/tcp"}


def test_environment_pins_threads_model_and_python_behaviour(config: dict[str, Any]) -> None:
    env = dict(item.split("=", 1) for item in config["Config"]["Env"])
    assert env["INFERENCE_MODEL_DIR"] == "/opt/model"
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        assert env[name] == "1", name
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PROMETHEUS_MULTIPROC_DIR"].startswith("/tmp/")  # noqa: S108
    assert env["PATH"].startswith("/opt/venv/bin:")


def test_healthcheck_probes_readiness_with_the_image_python(config: dict[str, Any]) -> None:
    health = config["Config"]["Healthcheck"]
    assert health["Test"][:2] == ["CMD", "python"]  # exec form, no curl in the image
    assert "/readyz" in health["Test"][-1]
    assert health["Interval"] == 10 * 10**9
    assert health["Timeout"] <= health["Interval"]


def test_oci_labels(config: dict[str, Any], image_version: str) -> None:
    labels = config["Config"]["Labels"]
    for key in OCI_LABELS:
        assert labels.get(f"org.opencontainers.image.{key}"), key
    if not os.environ.get("ML_MODEL_IMAGE"):  # built by this run: labels carry the build args
        default_base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE, re.MULTILINE)
        assert default_base, "the Dockerfile names no default base image"
        assert labels["org.opencontainers.image.base.name"] == os.environ.get(
            "PYTHON_IMAGE", default_base[1]
        )
        assert labels["org.opencontainers.image.version"] == image_version


def test_image_size_within_budget(config: dict[str, Any]) -> None:
    size_mb = config["Size"] / 1e6
    assert size_mb < SIZE_BUDGET_MB, f"image is {size_mb:.0f} MB"


def test_entrypoint_help_runs_without_network(
    image_tag: str, docker_client: docker.DockerClient
) -> None:
    output = docker_client.containers.run(
        image_tag, ["--help"], network_disabled=True, remove=True, stdout=True, stderr=True
    )
    assert b"usage: inference-server" in output
    assert b"INFERENCE_GRACEFUL_TIMEOUT" in output


def test_build_context_is_only_what_the_dockerfile_copies() -> None:
    # The same matcher docker-py (testcontainers) applies; the legacy builder sends it all.
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    paths = exclude_paths(str(ROOT), patterns, dockerfile="Dockerfile")
    sources = {path for path in paths if not path.startswith("wheelhouse/")}
    assert {path.split("/")[0] for path in sources} <= {
        "Dockerfile",
        ".dockerignore",
        "packages",
        "tools",
        "wheelhouse",
        "model",  # MODEL_SOURCE=context
    }
    forbidden = ("/tests/", "/__pycache__/", "/.env", "/.git/", "/.venv/", "/.nox/", "/bench/")
    assert not [path for path in sources if any(part in f"/{path}/" for part in forbidden)]
    assert "tools/container/requirements.txt" in sources
    size = sum((ROOT / path).stat().st_size for path in sources if (ROOT / path).is_file())
    assert size < 1_000_000, f"{size} bytes of sources in the build context"
    assert all(path.endswith(".whl") for path in paths - sources if path != "wheelhouse")
