"""``inference-server`` / ``python -m inference_server``: run Gunicorn (or Granian) in this process.

Every flag comes from :class:`inference_server.settings.Settings` and is exported as the
environment variable that the Gunicorn config module and ``create_app`` read; then Gunicorn's
arbiter runs in-process, so the PID does not change (signals from a container runtime reach
the Gunicorn master directly). ``INFERENCE_HTTP_SERVER=granian`` runs Granian's master
instead, from ``inference_server.granian_conf``, in the same way.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

# types-gunicorn may or may not be installed with the lint tools: accept both.
from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped,unused-ignore]

from inference_server.settings import ConfigError, flag_of, load_settings, shown_default, specs

CONFIG_MODULE = "inference_server.gunicorn_conf"


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


def _checked(check: Callable[[Any], Any]) -> Callable[[str], str]:
    """An argparse type: the setting's own check, keeping the text for the environment."""

    def parse(value: str) -> str:
        try:
            check(value)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface: one flag per setting (tokens only via the environment)."""
    parser = argparse.ArgumentParser(
        prog="inference-server",
        description="Serve a saved iris-model classifier over HTTP (seed, KServe V1, Open"
        " Inference V2) with Gunicorn. Every flag overrides its environment variable, shown"
        " in brackets with the default.",
    )
    for name, spec, default in specs():
        flag = flag_of(name, spec)
        if flag is None:
            continue
        shown = shown_default(spec, default)
        parser.add_argument(
            flag,
            dest=name,
            type=_checked(spec.check),
            metavar=name.upper() if spec.choices is None else None,
            choices=spec.choices,
            help=f"{spec.help} [{spec.env}, {shown}]".replace("%", "%%"),
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags, export them as environment variables and run the front end until it stops.

    Gunicorn, or Granian with ``INFERENCE_HTTP_SERVER=granian``.
    """
    args = build_parser().parse_args(argv)
    for name, spec, _default in specs():
        value = getattr(args, name, None)
        if value is not None:
            os.environ[spec.env] = value
    try:
        front_end = load_settings(os.environ).http_server
    except ConfigError as error:
        raise SystemExit(str(error)) from None
    if front_end == "granian":
        from inference_server import granian_conf  # noqa: PLC0415 - an optional front end

        granian_conf.main()
        return 0
    InferenceServer().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
