"""``inference-server`` / ``python -m inference_server``: run Gunicorn in this process.

Flags are turned into the environment variables that ``inference_server.gunicorn_conf``
and ``create_app`` read, then Gunicorn's arbiter runs in-process, so the PID does not change
(signals from a container runtime reach the Gunicorn master directly).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

# types-gunicorn may or may not be installed with the lint tools: accept both.
from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped,unused-ignore]

CONFIG_MODULE = "inference_server.gunicorn_conf"

# flag -> environment variable; None values are left alone.
_FLAG_ENV = {
    "bind": "INFERENCE_BIND",
    "workers": "WEB_CONCURRENCY",
    "threads": "INFERENCE_THREADS",
    "worker_class": "INFERENCE_WORKER_CLASS",
    "timeout": "INFERENCE_TIMEOUT",
    "graceful_timeout": "INFERENCE_GRACEFUL_TIMEOUT",
    "keepalive": "INFERENCE_KEEPALIVE",
    "max_requests": "INFERENCE_MAX_REQUESTS",
    "model_dir": "INFERENCE_MODEL_DIR",
    "max_rows": "INFERENCE_MAX_ROWS",
    "max_content_length": "INFERENCE_MAX_CONTENT_LENGTH",
    "log_level": "INFERENCE_LOG_LEVEL",
}


class InferenceServer(BaseApplication):  # type: ignore[misc,unused-ignore]
    """Gunicorn application whose settings come from ``inference_server.gunicorn_conf``."""

    def __init__(self, config_module: str = CONFIG_MODULE) -> None:
        self._config_module = config_module
        super().__init__()

    def load_config(self) -> None:
        """Apply every Gunicorn setting defined in the config module."""
        module = importlib.import_module(self._config_module)
        for name, value in vars(module).items():
            if name in self.cfg.settings and value is not None:
                self.cfg.set(name, value)

    def load(self) -> Any:
        """Create the Flask app (in each worker: nothing is preloaded)."""
        from inference_server.app import create_app  # noqa: PLC0415

        return create_app()


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="inference-server",
        description="Serve the Iris model over HTTP (seed, KServe V1, Open Inference V2) with"
        " Gunicorn. Every flag overrides its environment variable, shown in brackets.",
    )
    add = parser.add_argument
    add("--bind", metavar="HOST:PORT", help="address to listen on [INFERENCE_BIND, 0.0.0.0:5000]")
    add("--workers", type=int, metavar="N", help="worker processes [WEB_CONCURRENCY, 2]")
    add(
        "--worker-class",
        choices=["gevent", "gthread", "sync"],
        help="Gunicorn worker type [INFERENCE_WORKER_CLASS, gevent]",
    )
    add(
        "--threads", type=int, metavar="N", help="gthread threads per worker [INFERENCE_THREADS, 4]"
    )
    add("--timeout", type=int, metavar="S", help="worker timeout [INFERENCE_TIMEOUT, 30]")
    add(
        "--graceful-timeout",
        type=int,
        metavar="S",
        help="drain time after SIGTERM [INFERENCE_GRACEFUL_TIMEOUT, 20]",
    )
    add("--keepalive", type=int, metavar="S", help="keep-alive seconds [INFERENCE_KEEPALIVE, 5]")
    add(
        "--max-requests",
        type=int,
        metavar="N",
        help="restart a worker after N requests, 10%% jitter [INFERENCE_MAX_REQUESTS, 0 = never]",
    )
    add(
        "--model-dir",
        metavar="DIR",
        help="saved model to serve; unset trains the default model [INFERENCE_MODEL_DIR]",
    )
    add("--max-rows", type=int, metavar="N", help="largest batch [INFERENCE_MAX_ROWS, 10000]")
    add(
        "--max-content-length",
        type=int,
        metavar="BYTES",
        help="largest request body [INFERENCE_MAX_CONTENT_LENGTH, 1048576]",
    )
    add("--log-level", choices=["debug", "info", "warning", "error"], help="[INFERENCE_LOG_LEVEL]")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags, export them as environment variables and run Gunicorn until it stops."""
    args = build_parser().parse_args(argv)
    for flag, variable in _FLAG_ENV.items():
        value = getattr(args, flag)
        if value is not None:
            os.environ[variable] = str(value)
    InferenceServer().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
