"""Shared fixtures: an app with the default (trained) model and its test client."""

from __future__ import annotations

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
