"""Fixtures of the container suite: running containers of the production image.

Every container joins one user-defined network (created here, so the suite also works
where Docker's default bridge is missing) and publishes port 5000 on 127.0.0.1 only.
`server` is the shared one, started the way production runs it: read-only root
filesystem, a tmpfs on /tmp, all capabilities dropped, no-new-privileges.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import docker
import pytest
import requests
from testcontainers.core.container import DockerContainer, ExecConfig
from testcontainers.core.network import Network
from testcontainers.core.wait_strategies import HttpWaitStrategy, WaitStrategy

PORT = 5000
STARTUP_TIMEOUT = 120  # seconds; a cold start on a busy 2-core machine takes ~6 s
REQUEST_TIMEOUT = 10
HARDENED: dict[str, Any] = {
    "read_only": True,
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges"],
}


@dataclass
class Server:
    """A running container of the image and its base URL on 127.0.0.1."""

    container: DockerContainer
    host: str
    port: int

    @property
    def url(self) -> str:
        """Base URL, no trailing slash."""
        return f"http://{self.host}:{self.port}"

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        """GET path."""
        return requests.get(self.url + path, timeout=REQUEST_TIMEOUT, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        """POST path."""
        return requests.post(self.url + path, timeout=REQUEST_TIMEOUT, **kwargs)

    def exec(self, *command: str, user: str | None = None) -> tuple[int, str]:
        """Run a command inside the container (as the image's user): exit code and output."""
        result = self.container.exec(ExecConfig(list(command), user=user))
        return result.exit_code, result.output.decode(errors="replace")

    @property
    def wrapped(self) -> docker.models.containers.Container:
        """The docker-py container, for kill/wait/inspect."""
        return self.container.get_wrapped_container()


ServerFactory = Callable[..., Server]


@pytest.fixture(scope="session")
def network(docker_client: docker.DockerClient) -> Iterator[Network]:
    """A user-defined network for this run's containers."""
    with Network() as net:
        yield net


def ready_wait() -> WaitStrategy:
    """Ready = /readyz answers 200 (model loaded in a worker, not draining)."""
    strategy = HttpWaitStrategy(PORT, "/readyz").for_status_code(200)
    return strategy.with_startup_timeout(STARTUP_TIMEOUT)


@pytest.fixture(scope="session")
def start_server(image_tag: str, network: Network) -> Iterator[ServerFactory]:
    """Start a container of the image; every one is removed at the end of the session.

    Keyword arguments: env (extra environment), hardened (default True: read-only root,
    tmpfs /tmp, no capabilities), wait (a wait strategy, default: /readyz is 200),
    command (arguments for the entrypoint), image (default: the suite's image).
    """
    started: list[DockerContainer] = []

    def start(
        *,
        env: dict[str, str] | None = None,
        hardened: bool = True,
        wait: WaitStrategy | None = None,
        command: list[str] | None = None,
        image: str | None = None,
    ) -> Server:
        container = DockerContainer(image or image_tag).with_network(network)
        # Published on the loopback interface only: test traffic stays on this machine.
        container.ports[f"{PORT}/tcp"] = ("127.0.0.1", None)  # type: ignore[assignment]
        if hardened:
            container.with_kwargs(**HARDENED).with_tmpfs_mount("/tmp")  # noqa: S108
        container.with_envs(**(env or {}))
        if command is not None:
            container.with_command(command)
        container.waiting_for(wait or ready_wait())
        started.append(container)
        container.start()
        host = container.get_container_host_ip()
        host = "127.0.0.1" if host == "localhost" else host
        return Server(container, host, container.get_exposed_port(PORT))

    yield start
    for container in started:
        container.stop()


@pytest.fixture(scope="session")
def server(start_server: ServerFactory) -> Server:
    """The shared, production-like container (hardened, default configuration)."""
    return start_server()
