"""A thin, hardened HTTP service over :mod:`iris_model` (seed, KServe V1 and Open Inference V2).

``create_app`` is imported lazily: importing the package (for example to load
``inference_server.gunicorn_conf`` in the Gunicorn master) must not import Flask or
prometheus-client, which decides at import time whether it runs in multiprocess mode.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from inference_server.app import create_app

__all__ = ["__version__", "create_app"]

__version__ = version("inference-server")


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from inference_server.app import create_app  # noqa: PLC0415 (lazy on purpose)

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
