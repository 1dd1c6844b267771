"""Prometheus metrics, in multiprocess mode under Gunicorn.

When ``PROMETHEUS_MULTIPROC_DIR`` is set (the Gunicorn config sets it before any worker
imports prometheus-client), every worker writes its samples to that directory and
``GET /metrics`` aggregates them; the Gunicorn ``child_exit`` hook marks dead workers.
Without it (tests, ``flask run``) each app has its own in-memory registry.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

import iris_model

#: Key of the ``Metrics`` object in ``app.extensions``.
METRICS_KEY = "inference_server.metrics"
#: Method label values: the standard methods as sent, anything a client invents as "OTHER"
#: (5,000 invented methods once grew /metrics from 77 KB to 8.5 MB).
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
OTHER_METHOD = "OTHER"

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
ROW_BUCKETS = (1, 2, 5, 10, 50, 100, 500, 1000, 5000, 10000)


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


class Metrics:
    """The service's metrics, bound to one registry."""

    def __init__(self, model: iris_model.IrisModel, multiprocess_dir: str | None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.multiprocess_dir = multiprocess_dir
        registry = self.registry
        self.latency = Histogram(
            "inference_request_duration_seconds",
            "Time to answer a request, by route, method and status.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.errors = Counter(
            "inference_errors",
            "Error responses (status >= 400), by route and status.",
            ["route", "status"],
            registry=registry,
        )
        self.predictions = Counter(
            "inference_predictions",
            "Predicted rows, by predicted class.",
            ["class_name"],
            registry=registry,
        )
        self.rows = Histogram(
            "inference_rows_per_request",
            "Rows scored per prediction request.",
            buckets=ROW_BUCKETS,
            registry=registry,
        )
        self.model_info = Gauge(
            "inference_model_info",
            "The served model (value 1): artifact sha256, model version, directory digest and"
            " library versions.",
            [
                "sha256",
                "sklearn_version",
                "iris_model_version",
                "server_version",
                "model_version",
                "digest",
            ],
            multiprocess_mode="max",
            registry=registry,
        )
        self.model_info.labels(
            sha256=model.sha256 or "unsaved",
            sklearn_version=_package_version("scikit-learn"),
            iris_model_version=_package_version("iris-model"),
            server_version=_package_version("inference-server"),
            # Fixed at start-up by the model (one series per process): bounded.
            model_version=model.version or "none",
            digest=model.digest or "unsaved",
        ).set(1)
        #: Latency children by (route, method, status): the labels are bounded (routes are
        #: registered ones or "<unmatched>", methods as below), and a cached child skips
        #: prometheus-client's label lookup on every request.
        self._latency_children: dict[tuple[str, str, int], Any] = {}
        self._class_counters = [self.predictions.labels(class_name=name) for name in model.classes]
        if multiprocess_dir:
            self.exposition = CollectorRegistry()
            MultiProcessCollector(self.exposition, path=multiprocess_dir)  # type: ignore[no-untyped-call]
        else:
            self.exposition = registry

    def observe_predictions(self, indices: Sequence[int] | npt.NDArray[np.int64]) -> None:
        """Count one prediction request of ``len(indices)`` rows and its predicted classes."""
        self.rows.observe(len(indices))
        # One C pass over the rows (the library's array as it is) instead of a count per class.
        counts = np.bincount(
            np.asarray(indices, dtype=np.int64), minlength=len(self._class_counters)
        )
        for counter, n in zip(self._class_counters, counts.tolist(), strict=False):
            if n:
                counter.inc(n)

    def exposition_text(self) -> bytes:
        """Prometheus text exposition of every worker's metrics."""
        return generate_latest(self.exposition)

    def observe_response(self, route: str, method: str, status: int, seconds: float) -> None:
        """Record one answered request (``route`` must come from a fixed set already)."""
        method = method if method in KNOWN_METHODS else OTHER_METHOD
        key = (route, method, status)
        child = self._latency_children.get(key)
        if child is None:
            child = self._latency_children[key] = self.latency.labels(route, method, str(status))
        child.observe(seconds)
        if status >= 400:
            self.errors.labels(route, str(status)).inc()
