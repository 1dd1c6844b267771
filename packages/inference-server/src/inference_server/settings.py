"""Every setting of the server, each defined once: name, variable, default, check, help.

:class:`Settings` is the one model. Each field says which environment variable sets it, how a
value is checked and what it means; from that come ``create_app``'s configuration, the
Gunicorn configuration module, the ``inference-server`` flags and the README's settings table
(``python -m inference_server.settings`` prints it; a test fails when they drift apart).
Values are read once at start-up, never per request; a bad one stops the server with a
message naming the variable.

A small dataclass rather than pydantic-settings: the values are a dozen scalars, the
checks fit in a line each, and nothing here may cost anything per request or import time in
the Gunicorn master.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import iris_model
from inference_server.http.auth import tokens

#: Key of the ``Settings`` object in ``app.extensions``.
SETTINGS_KEY = "inference_server.settings"
ENV_PREFIX = "INFERENCE_"
MIB = 1024 * 1024
WORKER_CLASSES = ("gevent", "gthread", "sync")
HTTP_SERVERS = ("gunicorn", "granian")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
#: Body-limit formula (Settings.body_limit): bytes per value, per row, margin, envelope.
VALUE_BYTES = len("-2.2250738585072014e-308, ")
ROW_BYTES = len("[], ")
BODY_MARGIN = 1.25
ENVELOPE_BYTES = 4096
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class ConfigError(ValueError):
    """A configuration value is invalid; the server refuses to start."""


# --- checks: each takes a value from the environment, a flag or a test override -----------


def _integer(value: Any) -> int:
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be an integer")
    return value


def positive_int(value: Any) -> int:
    """An integer >= 1."""
    number = _integer(value) if not isinstance(value, bool) else -1
    if number < 1:
        raise ValueError("must be a positive integer")
    return number


def positive_float(value: Any) -> float:
    """A finite number > 0 (seconds)."""
    if isinstance(value, bool):
        raise ValueError("must be a positive number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError("must be a positive number") from None
    if not (math.isfinite(number) and number > 0):
        raise ValueError("must be a positive number")
    return number


def model_digest(value: Any) -> str | None:
    """``sha256:`` and 64 hex digits (iris_model.model_digest), or unset."""
    if value is None or value == "":
        return None
    text = str(value).strip().lower()
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", text):
        raise ValueError("must be sha256: followed by 64 hex digits")
    return text


def optional_positive_int(value: Any) -> int | None:
    """An integer >= 1, or None when unset or empty."""
    return None if value is None or value == "" else positive_int(value)


def non_negative_int(value: Any) -> int:
    """An integer >= 0."""
    number = _integer(value)
    if number < 0:
        raise ValueError("must not be negative")
    return number


def boolean(value: Any) -> bool:
    """true/false, 1/0, yes/no, on/off."""
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def optional_path(value: Any) -> Path | None:
    """A path, or None when unset or empty."""
    return None if value in (None, "") else Path(str(value))


def text(value: Any) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty string")
    return value.strip()


def model_name(value: Any) -> str:
    """A name that is safe in a URL path segment."""
    if not isinstance(value, str) or not _MODEL_NAME.fullmatch(value):
        raise ValueError("must be 1-63 letters, digits, '.', '_' or '-', starting alphanumeric")
    return value


def one_of(*choices: str) -> Callable[[Any], str]:
    """One of ``choices`` (case-insensitive)."""

    def check(value: Any) -> str:
        if not isinstance(value, str) or value.strip().lower() not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return value.strip().lower()

    return check


def inline_tokens(value: Any) -> tuple[bytes, ...]:
    """:func:`tokens`, refusing a string that holds none (``""``, ``" , "``).

    Set but blank would otherwise turn auth off while the operator meant it on: refused like
    an empty token file. Unset (or an empty list in overrides) still means auth off.
    """
    found = tokens(value)
    if not found and isinstance(value, str):
        raise ValueError("is set but holds no token (unset it to turn auth off)")
    return found


# --- the model -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Spec:
    """How one setting is read and documented.

    Attributes:
        env: The environment variable.
        check: Turns a raw value into the setting's value, or raises ``ValueError(reason)``.
        help: One line for ``--help`` and the README.
        scope: ``app`` (read by ``create_app``), ``gunicorn`` (the config module; the
            Granian launcher reads those that it has an equivalent for) or ``server`` (which
            front end ``inference-server`` runs).
        flag: The command-line flag, or None for none (secrets stay off command lines).
        shown_default: The default as documented, when the value itself would mislead.
        choices: Allowed values, for ``--help``.
    """

    env: str
    check: Callable[[Any], Any]
    help: str
    scope: str = "app"
    flag: str | None = ""
    shown_default: str | None = None
    choices: tuple[str, ...] | None = None


def setting(default: Any, env: str, check: Callable[[Any], Any], help: str, **spec: Any) -> Any:
    """A :class:`Settings` field: its default and its :class:`Spec`."""
    return field(default=default, metadata={"spec": Spec(env, check, help, **spec)})


@dataclass(frozen=True, slots=True)
class Settings:
    """Validated server settings (see the README's settings table, generated from this)."""

    model_dir: Path | None = setting(  # noqa: RUF009 - a dataclasses.field
        None,
        "INFERENCE_MODEL_DIR",
        optional_path,
        "saved model to serve (`iris-model train --output DIR`); unset trains the default"
        " Iris model at start-up (logged). A model that fails verification stops the server",
        shown_default="unset",
    )
    model_digest: str | None = setting(
        None,
        "INFERENCE_MODEL_DIGEST",
        model_digest,
        "pin the model directory: `sha256:<hex>` as `iris-model info` shows it; any other"
        " content, manifest included, stops the server",
        shown_default="unset",
    )
    allow_version_mismatch: bool = setting(
        False,
        "INFERENCE_ALLOW_VERSION_MISMATCH",
        boolean,
        "serve a model saved with another scikit-learn version if its golden pairs still"
        " reproduce (logged as a warning)",
    )
    model_name: str = setting(
        "iris",
        "INFERENCE_MODEL_NAME",
        model_name,
        "the model's name in KServe V1 and Open Inference Protocol V2 paths",
    )
    max_content_length: int | None = setting(
        None,
        "INFERENCE_MAX_CONTENT_LENGTH",
        optional_positive_int,
        "largest request body in bytes (413 above; chunked bodies too); unset: derived from"
        " INFERENCE_MAX_ROWS and the model's feature count (see Limits)",
        shown_default="derived",
    )
    body_idle_timeout: float = setting(
        5.0,
        "INFERENCE_BODY_IDLE_TIMEOUT",
        positive_float,
        "longest wait for the next bytes of a request body, seconds (408 and close past it)",
    )
    body_timeout: float = setting(
        20.0,
        "INFERENCE_BODY_TIMEOUT",
        positive_float,
        "longest time to receive a whole request body, seconds (408 and close past it)",
    )
    body_bytes_in_flight: int = setting(
        32 * MIB,
        "INFERENCE_BODY_BYTES_IN_FLIGHT",
        positive_int,
        "bytes of large (> 16 KiB) request bodies one worker holds at once; past it 503 with"
        " Retry-After. With the default workers and connections it keeps a pod under 768Mi",
    )
    max_rows: int = setting(
        iris_model.DEFAULT_MAX_ROWS,
        "INFERENCE_MAX_ROWS",
        positive_int,
        "largest batch in rows (413 above)",
    )
    auth_tokens: tuple[bytes, ...] = setting(
        (),
        "INFERENCE_AUTH_TOKENS",
        inline_tokens,
        "bearer tokens, comma or whitespace separated; set: prediction routes need one",
        flag=None,
        shown_default="unset",
    )
    auth_tokens_file: Path | None = setting(  # noqa: RUF009 - a dataclasses.field
        None,
        "INFERENCE_AUTH_TOKENS_FILE",
        optional_path,
        "file of bearer tokens (e.g. a mounted Secret), one per line; must hold one",
        shown_default="unset",
    )
    log_requests: bool = setting(
        True,
        "INFERENCE_LOG_REQUESTS",
        boolean,
        "one JSON access-log line per request on stdout",
    )
    train_seed: int = setting(
        42, "INFERENCE_TRAIN_SEED", _integer, "seed of the default model trained without a model"
    )
    http_server: str = setting(
        "gunicorn",
        "INFERENCE_HTTP_SERVER",
        one_of(*HTTP_SERVERS),
        "front end: gunicorn, or granian (about twice the rate, but no request-body read"
        " timeout: only behind a proxy that buffers whole bodies;"
        " needs `inference-server[granian]`)",
        scope="server",
        choices=HTTP_SERVERS,
    )
    bind: str = setting("0.0.0.0:5000", "INFERENCE_BIND", text, "listen address", scope="gunicorn")
    workers: int = setting(
        2, "WEB_CONCURRENCY", positive_int, "worker processes", scope="gunicorn", flag="--workers"
    )
    reuse_port: bool = setting(
        True,
        "INFERENCE_REUSE_PORT",
        boolean,
        "a listening socket per Gunicorn worker (SO_REUSEPORT): the kernel spreads new"
        " connections evenly; false: the workers race on one shared socket, and a burst of"
        " keep-alive connections can leave one idle",
        scope="gunicorn",
    )
    worker_class: str = setting(
        "gevent",
        "INFERENCE_WORKER_CLASS",
        one_of(*WORKER_CLASSES),
        "Gunicorn worker type (gevent survives slow clients)",
        scope="gunicorn",
        choices=WORKER_CLASSES,
    )
    worker_connections: int = setting(
        4000,
        "INFERENCE_WORKER_CONNECTIONS",
        positive_int,
        "connections per gevent worker; more than a stalling crowd can fill before the body"
        " deadlines free them (each holds at most a 16 KiB body outside the in-flight budget)",
        scope="gunicorn",
    )
    threads: int = setting(
        4, "INFERENCE_THREADS", positive_int, "threads per gthread worker", scope="gunicorn"
    )
    timeout: int = setting(
        30,
        "INFERENCE_TIMEOUT",
        non_negative_int,
        "seconds before a silent worker is restarted (Gunicorn only)",
        scope="gunicorn",
    )
    graceful_timeout: int = setting(
        20,
        "INFERENCE_GRACEFUL_TIMEOUT",
        non_negative_int,
        "drain time after SIGTERM, seconds (both front ends); the Kubernetes manifests depend"
        " on it",
        scope="gunicorn",
    )
    keepalive: int = setting(
        5,
        "INFERENCE_KEEPALIVE",
        positive_int,
        "keep-alive seconds; also Gunicorn's only deadline for request headers, so 0 (which"
        " would remove it and let slow-header clients hold workers) is refused",
        scope="gunicorn",
    )
    max_requests: int = setting(
        0,
        "INFERENCE_MAX_REQUESTS",
        non_negative_int,
        "recycle a worker after N requests (0: never; Gunicorn only)",
        scope="gunicorn",
    )
    max_requests_jitter: int = setting(
        0,
        "INFERENCE_MAX_REQUESTS_JITTER",
        non_negative_int,
        "random extra requests before recycling; at least 10 % of the above",
        scope="gunicorn",
    )
    log_level: str = setting(
        "info",
        "INFERENCE_LOG_LEVEL",
        one_of(*LOG_LEVELS),
        "Gunicorn and app log level",
        scope="gunicorn",
        choices=LOG_LEVELS,
    )
    metrics_dir: Path | None = setting(  # noqa: RUF009 - a dataclasses.field
        None,
        "PROMETHEUS_MULTIPROC_DIR",
        optional_path,
        "where workers write metrics (emptied at start)",
        scope="gunicorn",
        shown_default="a fresh /tmp directory",
    )

    @property
    def auth_enabled(self) -> bool:
        """Whether tokens are configured, inline or in a file (:func:`file_tokens` reads it)."""
        return bool(self.auth_tokens) or self.auth_tokens_file is not None

    def body_limit(self, n_features: int) -> int:
        """``max_content_length``, or when unset the largest legitimate body, with a margin.

        The largest body a batch of ``max_rows`` rows of ``n_features`` values needs, each
        value in its longest shortest-round-trip form (``-2.2250738585072014e-308``, 24 bytes)
        followed by ``", "``, each row in ``[``, ``]`` and ``", "``; times
        :data:`BODY_MARGIN` for other whitespace, plus :data:`ENVELOPE_BYTES` for the keys,
        ``id``, shape and parameters around the rows.
        """
        if self.max_content_length is not None:
            return self.max_content_length
        row = VALUE_BYTES * n_features + ROW_BYTES
        return math.ceil(BODY_MARGIN * self.max_rows * row) + ENVELOPE_BYTES

    @property
    def jitter(self) -> int:
        """``max_requests_jitter``, raised to 10 % of ``max_requests``."""
        return max(self.max_requests_jitter, self.max_requests // 10)


def specs() -> Iterable[tuple[str, Spec, Any]]:
    """Every setting: field name, spec and default, in definition order."""
    for item in dataclasses.fields(Settings):
        yield item.name, item.metadata["spec"], item.default


def override_key(spec: Spec) -> str:
    """The key of a setting in ``create_app``'s config mapping (``MAX_ROWS``)."""
    return spec.env.removeprefix(ENV_PREFIX)


def flag_of(name: str, spec: Spec) -> str | None:
    """The setting's command-line flag (``--max-rows``), or None."""
    if spec.flag is None:
        return None
    return spec.flag or "--" + name.replace("_", "-")


def load_settings(
    environ: Mapping[str, str], overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Read every setting from ``environ``, then ``overrides`` (keys like ``MAX_ROWS``).

    Raises:
        ConfigError: A value fails its check; the message names the variable.
    """
    overrides = overrides or {}
    values: dict[str, Any] = {}
    for name, spec, _default in specs():
        key = override_key(spec)
        if key in overrides:
            raw = overrides[key]
        elif spec.env in environ:
            raw = environ[spec.env]
        else:
            continue
        try:
            values[name] = spec.check(raw)
        except ValueError as error:
            raise ConfigError(f"{spec.env} {error}, got {raw!r}") from None
    return Settings(**values)


def file_tokens(path: Path) -> tuple[bytes, ...]:
    """The tokens of the file ``path`` at start-up.

    Raises:
        ConfigError: The file cannot be read or holds no token (auth would be off silently).
    """
    try:
        found = tokens(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read INFERENCE_AUTH_TOKENS_FILE {path}: {error}") from error
    if not found:
        raise ConfigError(f"INFERENCE_AUTH_TOKENS_FILE {path} holds no token")
    return found


def shown_default(spec: Spec, default: Any) -> str:
    """The default as ``--help`` and the README show it."""
    if spec.shown_default is not None:
        return spec.shown_default
    return str(default).lower() if isinstance(default, bool) else str(default)


def markdown_table() -> str:
    """The README's settings table."""
    lines = ["| Variable | Flag | Default | Meaning |", "|---|---|---|---|"]
    for name, spec, default in specs():
        flag = flag_of(name, spec)
        shown = shown_default(spec, default)
        lines.append(f"| `{spec.env}` | {f'`{flag}`' if flag else ''} | {shown} | {spec.help} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
