"""Settings: defaults, INFERENCE_* environment, overrides, validation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from inference_server.config import DEFAULTS, SETTINGS_KEY, ConfigError, load_settings, parse_tokens


def settings_of(**overrides: Any) -> Any:
    return load_settings({**DEFAULTS, **overrides})


def test_defaults() -> None:
    """1 MiB bodies, 10,000 rows, no auth, trained model, logging on."""
    settings = settings_of()
    assert settings.max_content_length == 1024 * 1024
    assert settings.max_rows == 10_000
    assert settings.auth_tokens == ()
    assert not settings.auth_enabled
    assert settings.model_dir is None
    assert settings.log_requests


def test_environment_is_read_at_start(
    monkeypatch: pytest.MonkeyPatch, make_app: Callable[..., Flask]
) -> None:
    """INFERENCE_* variables configure the app; explicit config wins over them."""
    monkeypatch.setenv("INFERENCE_MAX_ROWS", "7")
    monkeypatch.setenv("INFERENCE_MAX_CONTENT_LENGTH", "2048")
    app = make_app()
    assert app.extensions[SETTINGS_KEY].max_rows == 7
    assert app.extensions["iris_model"].max_rows == 7
    assert app.extensions[SETTINGS_KEY].max_content_length == 2048
    assert make_app(MAX_ROWS=9).extensions[SETTINGS_KEY].max_rows == 9


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"MAX_ROWS": 0}, "INFERENCE_MAX_ROWS must be a positive integer"),
        ({"MAX_ROWS": "many"}, "INFERENCE_MAX_ROWS must be a positive integer"),
        ({"MAX_CONTENT_LENGTH": True}, "INFERENCE_MAX_CONTENT_LENGTH must be a positive integer"),
        ({"TRAIN_SEED": "x"}, "INFERENCE_TRAIN_SEED must be an integer"),
        ({"LOG_REQUESTS": "maybe"}, "INFERENCE_LOG_REQUESTS must be true or false"),
        ({"AUTH_TOKENS_FILE": "/nonexistent/tokens"}, "cannot read INFERENCE_AUTH_TOKENS_FILE"),
    ],
)
def test_invalid_values_stop_start_up(overrides: dict[str, Any], message: str) -> None:
    """A wrong value is a ConfigError naming the variable."""
    with pytest.raises(ConfigError, match=message):
        settings_of(**overrides)


def test_string_values() -> None:
    """Digit strings and boolean words are accepted (config files, env without JSON)."""
    settings = settings_of(MAX_ROWS="12", LOG_REQUESTS="off", MODEL_DIR="")
    assert settings.max_rows == 12
    assert not settings.log_requests
    assert settings.model_dir is None
    assert settings_of(LOG_REQUESTS="yes").log_requests


def test_empty_token_file_is_an_error(tmp_path: Path) -> None:
    """A token file without tokens would silently disable auth: refuse it."""
    empty = tmp_path / "tokens"
    empty.write_text("\n \n")
    with pytest.raises(ConfigError, match="holds no token"):
        settings_of(AUTH_TOKENS_FILE=str(empty))


def test_tokens_merge_env_list_and_file(tmp_path: Path) -> None:
    """Inline tokens (string or JSON list) and file tokens are all accepted."""
    token_file = tmp_path / "tokens"
    token_file.write_text("c")
    settings = settings_of(AUTH_TOKENS=["a", 1], AUTH_TOKENS_FILE=str(token_file))
    assert settings.auth_tokens == (b"a", b"1", b"c")


def test_parse_tokens() -> None:
    """Commas and whitespace separate tokens."""
    assert parse_tokens(" a,b\nc  d,, ") == (b"a", b"b", b"c", b"d")
