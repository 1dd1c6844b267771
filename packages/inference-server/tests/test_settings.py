"""The settings model: defaults, environment, overrides, checks, and the README table."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from inference_server.settings import (
    SETTINGS_KEY,
    ConfigError,
    Settings,
    file_tokens,
    load_settings,
    markdown_table,
    specs,
    tokens,
)

README = Path(__file__).parents[1] / "README.md"


def settings_of(**overrides: Any) -> Settings:
    return load_settings({}, overrides)


def test_defaults() -> None:
    """A derived body limit, 10,000 rows, no auth, trained model named iris, logging on."""
    settings = settings_of()
    assert settings == Settings()
    assert settings.max_content_length is None
    assert settings.max_rows == 10_000
    assert settings.auth_tokens == ()
    assert not settings.auth_enabled
    assert settings.model_dir is None
    assert settings.model_name == "iris"
    assert settings.log_requests
    assert (settings.bind, settings.workers, settings.worker_class) == ("0.0.0.0:5000", 2, "gevent")


def test_environment_then_overrides() -> None:
    """Variables are read by name; an override (key without INFERENCE_) wins over them."""
    environ = {"INFERENCE_MAX_ROWS": "7", "WEB_CONCURRENCY": "3", "INFERENCE_MODEL_NAME": "wine"}
    settings = load_settings(environ, {"MAX_ROWS": 9})
    assert (settings.max_rows, settings.workers, settings.model_name) == (9, 3, "wine")
    assert load_settings(environ).max_rows == 7


def test_environment_is_read_at_start(
    monkeypatch: pytest.MonkeyPatch, make_app: Callable[..., Flask]
) -> None:
    """create_app reads the environment once; the model gets the row limit."""
    monkeypatch.setenv("INFERENCE_MAX_ROWS", "7")
    monkeypatch.setenv("INFERENCE_MAX_CONTENT_LENGTH", "2048")
    app = make_app()
    assert app.extensions[SETTINGS_KEY].max_rows == 7
    assert app.extensions["iris_model"].max_rows == 7
    assert app.extensions[SETTINGS_KEY].max_content_length == 2048


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"MAX_ROWS": 0}, "INFERENCE_MAX_ROWS must be a positive integer"),
        ({"MAX_ROWS": "many"}, "INFERENCE_MAX_ROWS must be an integer"),
        ({"MAX_CONTENT_LENGTH": True}, "INFERENCE_MAX_CONTENT_LENGTH must be a positive integer"),
        ({"TRAIN_SEED": "x"}, "INFERENCE_TRAIN_SEED must be an integer"),
        ({"LOG_REQUESTS": "maybe"}, "INFERENCE_LOG_REQUESTS must be true or false"),
        ({"MODEL_NAME": "a/b"}, "INFERENCE_MODEL_NAME must be 1-63 letters"),
        ({"MODEL_NAME": ""}, "INFERENCE_MODEL_NAME must be"),
        ({"WORKER_CLASS": "eventlet"}, "INFERENCE_WORKER_CLASS must be one of gevent"),
        ({"WEB_CONCURRENCY": "-1"}, "WEB_CONCURRENCY must be a positive integer"),
        ({"TIMEOUT": "-1"}, "INFERENCE_TIMEOUT must not be negative"),
        # keepalive is Gunicorn's only header deadline: 0 would let slowloris hold workers.
        ({"KEEPALIVE": "0"}, "INFERENCE_KEEPALIVE must be a positive integer"),
        ({"BODY_IDLE_TIMEOUT": "0"}, "INFERENCE_BODY_IDLE_TIMEOUT must be a positive number"),
        ({"BODY_TIMEOUT": "inf"}, "INFERENCE_BODY_TIMEOUT must be a positive number"),
        ({"MODEL_DIGEST": "abc"}, "INFERENCE_MODEL_DIGEST must be sha256: followed by 64"),
    ],
)
def test_invalid_values_stop_start_up(overrides: dict[str, Any], message: str) -> None:
    """A wrong value is a ConfigError naming the variable and the value."""
    with pytest.raises(ConfigError, match=message):
        settings_of(**overrides)


def test_string_values() -> None:
    """Digit strings and boolean words are accepted (environment, config files)."""
    settings = settings_of(MAX_ROWS=" 12 ", LOG_REQUESTS="off", MODEL_DIR="")
    assert settings.max_rows == 12
    assert not settings.log_requests
    assert settings.model_dir is None
    assert settings_of(LOG_REQUESTS="yes").log_requests


def test_token_file_errors(tmp_path: Path) -> None:
    """An unreadable or empty token file would silently disable auth: refuse it."""
    empty = tmp_path / "tokens"
    empty.write_text("\n \n")
    with pytest.raises(ConfigError, match="holds no token"):
        file_tokens(empty)
    with pytest.raises(ConfigError, match="cannot read INFERENCE_AUTH_TOKENS_FILE"):
        file_tokens(tmp_path / "absent")
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="cannot read INFERENCE_AUTH_TOKENS_FILE"):
        file_tokens(binary)


def test_tokens_merge_env_list_and_file(tmp_path: Path) -> None:
    """Inline tokens (string or list) and file tokens are all accepted."""
    token_file = tmp_path / "tokens"
    token_file.write_text("c")
    settings = settings_of(AUTH_TOKENS=["a", 1], AUTH_TOKENS_FILE=str(token_file))
    assert settings.auth_tokens == (b"a", b"1")
    assert settings.auth_tokens_file is not None
    assert file_tokens(settings.auth_tokens_file) == (b"c",)
    assert settings.auth_enabled


def test_parse_tokens() -> None:
    """Commas and whitespace separate tokens."""
    assert tokens(" a,b\nc  d,, ") == (b"a", b"b", b"c", b"d")


def test_jitter_is_at_least_ten_percent() -> None:
    """A smaller jitter is raised to 10 % of max_requests; a larger one is kept."""
    assert settings_of(MAX_REQUESTS="500", MAX_REQUESTS_JITTER="5").jitter == 50
    assert settings_of(MAX_REQUESTS_JITTER="80").jitter == 80


def test_every_setting_has_a_variable_and_help() -> None:
    """Each setting names one variable (no two share one) and says what it does."""
    envs = [spec.env for _name, spec, _default in specs()]
    assert len(envs) == len(set(envs))
    for _name, spec, _default in specs():
        assert spec.help
        assert spec.scope in {"app", "gunicorn", "server"}


def test_readme_table_matches_the_model() -> None:
    """The README's settings table is the one the model generates.

    Regenerate it with ``python -m inference_server.settings``.
    """
    text = README.read_text(encoding="utf-8")
    found = re.search(r"<!-- settings:start -->\n(.*?)<!-- settings:end -->", text, re.S)
    assert found, "README.md lost its settings markers"
    assert found.group(1) == markdown_table()


def test_derived_body_limit_fits_the_longest_batch_the_row_limit_allows() -> None:
    """The longest float64 texts, as json.dumps writes them, fit; a set limit wins."""
    settings = settings_of(MAX_ROWS=100)
    longest = [[-2.2250738585072014e-308] * 4] * 100
    body = json.dumps({"instances": longest}).encode()
    assert len(body) <= settings.body_limit(4)
    assert settings.body_limit(4) < 2 * len(body)
    assert settings.body_limit(8) > settings.body_limit(4)
    assert settings_of(MAX_ROWS=200).body_limit(4) > settings.body_limit(4)
    assert settings_of(MAX_CONTENT_LENGTH=2048).body_limit(4) == 2048


def test_the_app_and_openapi_use_the_derived_limit(make_app: Callable[..., Flask]) -> None:
    app = make_app(MAX_ROWS=10)
    limit = app.extensions[SETTINGS_KEY].body_limit(4)
    client = app.test_client()
    assert str(limit) in client.get("/openapi.json").get_data(as_text=True)
    over = client.post("/predict", data=b" " * (limit + 1), content_type="application/json")
    assert over.status_code == 413


@pytest.mark.parametrize("blank", ["", " ", ",", " , ", "\n,\t"])
def test_blank_token_variable_refuses_to_start(blank: str) -> None:
    """INFERENCE_AUTH_TOKENS set but holding no token stops start-up (it meant auth on)."""
    with pytest.raises(ConfigError, match="INFERENCE_AUTH_TOKENS is set but holds no token"):
        load_settings({"INFERENCE_AUTH_TOKENS": blank})
    assert not load_settings({}).auth_enabled  # unset: auth off, as before
