"""Shared fixtures of the integration suites: a Docker daemon and the production image.

`image_tag` (session scope) builds the root Dockerfile once per run with testcontainers'
DockerImage and yields the tag (`ml-model:pytest`, a tag no deploy path or document uses,
so a stale test image is never deployed by mistake), or yields ML_MODEL_IMAGE unchanged when
that names a prebuilt image. `build_image` builds variants (other MODEL_SEED, ...) the same
way. The build follows the environment that `nox -s container`
sets up: PYTHON_IMAGE (base image) and PIP_NO_INDEX=1 (air-gapped: wheels from
./wheelhouse, built with `--network none`); VERSION is the git-derived package version.

Without a Docker daemon the tests that use these fixtures are skipped with a message
saying how to get one; in CI (CI=true) they fail instead.

Ryuk (testcontainers' reaper) is an image pulled from a registry, which may be
unreachable: it is disabled unless TESTCONTAINERS_RYUK_DISABLED says otherwise, and
`docker_client` removes every container this run started (by the session label) at the end.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest
import requests
import setuptools_scm
from testcontainers.core.config import ConnectionMode, testcontainers_config
from testcontainers.core.image import DockerImage
from testcontainers.core.labels import LABEL_SESSION_ID, SESSION_ID

ROOT = Path(__file__).resolve().parents[2]
IMAGE_TAG = "ml-model:pytest"
IMAGE_ENV = "ML_MODEL_IMAGE"
BUILD_ARG_ENVS = ("PYTHON_IMAGE", "PIP_NO_INDEX")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
HOW_TO_GET_DOCKER = (
    "install Docker Engine (Debian/Ubuntu: `apt-get install docker.io`) and start the daemon "
    "(`systemctl start docker`, or `dockerd &` as root where there is no systemd), "
    "or point DOCKER_HOST at one"
)

if "TESTCONTAINERS_RYUK_DISABLED" not in os.environ:
    testcontainers_config.ryuk_disabled = True
# A daemon on this machine's socket publishes ports on this machine: talk to 127.0.0.1.
# (testcontainers would pick the network gateway when /.dockerenv exists, as in a dev
# container running its own dockerd.) Docker-outside-of-Docker setups set
# TESTCONTAINERS_CONNECTION_MODE=bridge_ip themselves.
_LOCAL_DAEMON = os.environ.get("DOCKER_HOST", "unix://").startswith("unix://")
if _LOCAL_DAEMON and not (
    os.environ.get("TESTCONTAINERS_CONNECTION_MODE") or testcontainers_config.tc_host_override
):
    testcontainers_config.connection_mode_override = ConnectionMode.docker_host
    testcontainers_config.tc_host_override = "127.0.0.1"


def _unavailable(reason: str) -> None:
    """Skip, or fail in CI, where these tests must run."""
    message = f"{reason}: {HOW_TO_GET_DOCKER}"
    if IN_CI:
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """A client of a reachable Docker daemon; removes this run's containers at the end."""
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if host.startswith("unix://"):
        # Checked here first: docker-py leaks the socket of a failed unix connection.
        path = host.removeprefix("unix://")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            try:
                sock.connect(path)
            except OSError as exc:
                _unavailable(f"no Docker daemon answers on {path} ({exc.strerror})")
    try:
        probe = docker.from_env(version="1.24", timeout=10)  # no request in the constructor
        try:
            probe.ping()
        finally:
            probe.close()
    except (docker.errors.DockerException, requests.RequestException) as exc:
        _unavailable(f"no Docker daemon is reachable at {host} ({exc})")
    client = docker.from_env(timeout=600)
    yield client
    leftovers = client.containers.list(
        all=True, filters={"label": f"{LABEL_SESSION_ID}={SESSION_ID}"}
    )
    for container in leftovers:
        container.remove(force=True)
    client.close()


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def package_version() -> str:
    """The version hatch-vcs gives both packages here: from the git tag, or the pretend one.

    The image build has no .git, so it gets this as the VERSION build argument (the Dockerfile
    hands it to SETUPTOOLS_SCM_PRETEND_VERSION): `SETUPTOOLS_SCM_PRETEND_VERSION=1.2.3 nox -s
    container` builds and checks an image that says 1.2.3 everywhere.
    """
    return str(setuptools_scm.get_version(root=str(ROOT)))


def build_args() -> dict[str, str]:
    """Build arguments: the air-gapped knobs from the environment plus OCI label values."""
    args = {name: os.environ[name] for name in BUILD_ARG_ENVS if os.environ.get(name)}
    args["VERSION"] = package_version()
    args["REVISION"] = _git("rev-parse", "HEAD")
    # The commit time, not "now": rebuilding the same commit gives the same image.
    args["CREATED"] = _git("log", "-1", "--format=%cI")
    return args


def build_image(tag: str, extra_args: dict[str, str] | None = None) -> str:
    """Build the root Dockerfile as `tag` (kept for the layer cache); fail the test on error.

    `extra_args` are build arguments on top of `build_args()` (e.g. MODEL_SEED).
    """
    args = build_args() | (extra_args or {})
    offline = bool(args.get("PIP_NO_INDEX"))
    if offline and not any((ROOT / "wheelhouse").glob("*.whl")):
        pytest.fail("PIP_NO_INDEX is set but wheelhouse/ is empty: run `nox -s wheelhouse`")
    image = DockerImage(
        path=ROOT,
        tag=tag,
        clean_up=False,
        docker_client_kw={"timeout": 900},
        buildargs=args,
        # Air-gapped: prove that the build needs nothing but the context.
        **({"network_mode": "none"} if offline else {}),
    )
    started = time.monotonic()
    try:
        image.build()
    except docker.errors.BuildError as exc:
        log = "".join(str(chunk.get("stream", chunk.get("error", ""))) for chunk in exc.build_log)
        pytest.fail(f"docker build failed: {exc.msg}\n{log[-6000:]}", pytrace=False)
    base = args.get("PYTHON_IMAGE", "the default base image")
    mode = f"air-gapped, {base}" if offline else f"{base}, packages from the index"
    extra = f", {extra_args}" if extra_args else ""
    print(f"\nbuilt {tag} ({mode}{extra}) in {time.monotonic() - started:.1f} s")
    return tag


@pytest.fixture(scope="session")
def image_tag(docker_client: docker.DockerClient) -> Iterator[str]:
    """The production image's tag: ML_MODEL_IMAGE if set, else `ml-model:pytest` built now.

    The built image is kept (clean_up=False) so the next run reuses its layer cache.
    """
    prebuilt = os.environ.get(IMAGE_ENV)
    if prebuilt:
        try:
            docker_client.images.get(prebuilt)
        except docker.errors.ImageNotFound:
            pytest.fail(f"{IMAGE_ENV}={prebuilt} is not an image of this Docker daemon")
        yield prebuilt
        return
    yield build_image(IMAGE_TAG)


@pytest.fixture(scope="session")
def image_version(image_tag: str, docker_client: docker.DockerClient) -> str:
    """The version the image must report everywhere.

    An image built by this run: the git-derived version it was given. A prebuilt one
    (ML_MODEL_IMAGE, e.g. CI's): its OCI version label, which CI sets from the same source.
    """
    if not os.environ.get(IMAGE_ENV):
        return package_version()
    labels = docker_client.images.get(image_tag).labels or {}
    return str(labels.get("org.opencontainers.image.version", ""))
