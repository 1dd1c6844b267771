"""Shared fixtures: an app with the default (trained) model and its test client."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

import iris_model
from inference_server import create_app
from inference_server.settings import specs

SETOSA = [5.1, 3.5, 1.4, 0.2]
VIRGINICA = [6.7, 3.0, 5.2, 2.3]
#: Every variable the server reads (the settings model's), so tests start from defaults.
INFERENCE_ENV = tuple(spec.env for _name, spec, _default in specs())


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see no INFERENCE_* variable unless they set one."""
    for name in INFERENCE_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def make_app() -> Callable[..., Flask]:
    """Build an app with config overrides (request logging off unless asked for)."""

    def factory(model: iris_model.IrisModel | None = None, **config: Any) -> Flask:
        config.setdefault("LOG_REQUESTS", False)
        app = create_app(config, model=model)
        app.testing = True
        return app

    return factory


@pytest.fixture(scope="session")
def app() -> Flask:
    """One shared app with default settings and the default model (tests must not mutate it)."""
    shared = create_app({"LOG_REQUESTS": False})
    shared.testing = True
    return shared


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved default model, as iris-model's CLI would write it."""
    directory = tmp_path_factory.mktemp("model")
    iris_model.save(iris_model.train(seed=42).model, directory)
    return directory


@pytest.fixture
def client(app: Flask) -> Iterator[FlaskClient]:
    """A test client of ``app``."""
    with app.test_client() as test_client:
        yield test_client


class SecretVolume:
    """A directory laid out as the kubelet mounts a Secret: ``tokens -> ..data/tokens``.

    An update writes a new timestamped directory and swaps the ``..data`` symlink to it with
    one rename, so a reader sees the old file or the new one, never a half-written one.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.generation = 0

    @property
    def path(self) -> Path:
        """What INFERENCE_AUTH_TOKENS_FILE names: the key's symlink."""
        return self.root / "tokens"

    def write(self, content: str) -> None:
        """Publish ``content`` as the kubelet does: a new directory, one symlink swap."""
        self.generation += 1
        data = self.root / f"..2026_12_01_{self.generation}"
        data.mkdir()
        (data / "tokens").write_text(content)
        staged = self.root / "..data_tmp"
        staged.symlink_to(data.name)
        os.replace(staged, self.root / "..data")
        if not self.path.is_symlink():
            self.path.symlink_to("..data/tokens")
