"""Server settings: defaults, validated once at start-up into an immutable ``Settings``.

Flask's ``from_prefixed_env("INFERENCE")`` turns ``INFERENCE_MAX_ROWS=500`` into
``config["MAX_ROWS"] = 500`` (values are parsed as JSON where possible). Nothing here reads
the environment at import time, and handlers never read configuration: they get ``Settings``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import iris_model

#: Key of the ``Settings`` object in ``app.extensions``.
SETTINGS_KEY = "inference_server.settings"

MIB = 1024 * 1024

DEFAULTS: dict[str, Any] = {
    "MODEL_DIR": None,
    "MAX_CONTENT_LENGTH": MIB,
    "MAX_ROWS": iris_model.DEFAULT_MAX_ROWS,
    "AUTH_TOKENS": None,
    "AUTH_TOKENS_FILE": None,
    "TRAIN_SEED": 42,
    "LOG_REQUESTS": True,
    "FAST_PATH": True,
}


class ConfigError(ValueError):
    """A configuration value is invalid; the server refuses to start."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Validated server settings.

    Attributes:
        model_dir: Directory of a saved model, or None to train the default model at start-up.
        max_content_length: Largest accepted request body, in bytes.
        max_rows: Largest accepted batch, in rows.
        auth_tokens: Accepted bearer tokens; empty means authentication is off.
        train_seed: Seed of the default model trained when ``model_dir`` is None.
        log_requests: Whether to write one JSON access-log line per request.
        fast_path: Whether successful prediction requests may skip Flask
            (:mod:`inference_server.fastpath`); off means every request goes through Flask.
    """

    model_dir: Path | None
    max_content_length: int
    max_rows: int
    auth_tokens: tuple[bytes, ...]
    train_seed: int
    log_requests: bool
    fast_path: bool = True

    @property
    def auth_enabled(self) -> bool:
        """Whether prediction routes require a bearer token."""
        return bool(self.auth_tokens)


def _positive_int(config: Mapping[str, Any], key: str) -> int:
    value = config[key]
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"INFERENCE_{key} must be a positive integer, got {value!r}")
    return value


def _int(config: Mapping[str, Any], key: str) -> int:
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"INFERENCE_{key} must be an integer, got {value!r}")
    return value


def _bool(config: Mapping[str, Any], key: str) -> bool:
    value = config[key]
    if isinstance(value, str) and value.lower() in {"0", "false", "no", "off"}:
        return False
    if isinstance(value, str) and value.lower() in {"1", "true", "yes", "on"}:
        return True
    if not isinstance(value, bool):
        raise ConfigError(f"INFERENCE_{key} must be true or false, got {value!r}")
    return value


def parse_tokens(text: str) -> tuple[bytes, ...]:
    """Split a token list on commas and whitespace; blank entries are dropped."""
    return tuple(token.encode() for token in re.split(r"[\s,]+", text) if token)


def _tokens(config: Mapping[str, Any]) -> tuple[bytes, ...]:
    tokens: list[bytes] = []
    inline = config["AUTH_TOKENS"]
    if inline is not None:
        # from_prefixed_env parses "123" as an int and "[...]" as a list.
        items = inline if isinstance(inline, list) else [inline]
        for item in items:
            tokens += parse_tokens(str(item))
    token_file = config["AUTH_TOKENS_FILE"]
    if token_file:
        path = Path(str(token_file))
        try:
            tokens += parse_tokens(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise ConfigError(f"cannot read INFERENCE_AUTH_TOKENS_FILE {path}: {error}") from error
        if not tokens:
            raise ConfigError(f"INFERENCE_AUTH_TOKENS_FILE {path} holds no token")
    return tuple(tokens)


def load_settings(config: Mapping[str, Any]) -> Settings:
    """Validate a Flask config mapping (defaults + env + overrides) into ``Settings``.

    Raises:
        ConfigError: A value has the wrong type or range, or the token file is unreadable.
    """
    model_dir = config["MODEL_DIR"]
    return Settings(
        model_dir=Path(str(model_dir)) if model_dir not in (None, "") else None,
        max_content_length=_positive_int(config, "MAX_CONTENT_LENGTH"),
        max_rows=_positive_int(config, "MAX_ROWS"),
        auth_tokens=_tokens(config),
        train_seed=_int(config, "TRAIN_SEED"),
        log_requests=_bool(config, "LOG_REQUESTS"),
        fast_path=_bool(config, "FAST_PATH"),
    )
