"""Prometheus metrics: latency by route and status, predictions per class, rows, errors, model."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

import iris_model
from inference_server.metrics import METRICS_KEY, Metrics

from .conftest import SETOSA, VIRGINICA


def _samples(app: Flask) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = app.test_client().get("/metrics").get_data(as_text=True)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_after_traffic(make_app: Callable[..., Flask]) -> None:
    """Requests show up by route/method/status; predictions by class; rows per request."""
    app = make_app()
    client = app.test_client()
    client.post("/predict", json={"instances": [SETOSA, SETOSA, VIRGINICA]})
    client.post("/predict", json={"features": "x"})
    client.get("/nowhere")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    samples = _samples(app)
    latency = "inference_request_duration_seconds_count"
    assert samples[(latency, (("method", "POST"), ("route", "/predict"), ("status", "200")))] == 1
    assert samples[(latency, (("method", "POST"), ("route", "/predict"), ("status", "400")))] == 1
    assert samples[(latency, (("method", "GET"), ("route", "<unmatched>"), ("status", "404")))] == 1
    assert samples[("inference_predictions_total", (("class_name", "setosa"),))] == 2
    assert samples[("inference_predictions_total", (("class_name", "virginica"),))] == 1
    assert samples[("inference_predictions_total", (("class_name", "versicolor"),))] == 0
    assert samples[("inference_rows_per_request_count", ())] == 1
    assert samples[("inference_rows_per_request_sum", ())] == 3
    assert samples[("inference_errors_total", (("route", "/predict"), ("status", "400")))] == 1
    assert samples[("inference_errors_total", (("route", "<unmatched>"), ("status", "404")))] == 1


def test_model_info(make_app: Callable[..., Flask], model_dir: Path) -> None:
    """model_info carries the artifact sha256 and versions, value 1."""
    app = make_app(MODEL_DIR=str(model_dir))
    sha = app.extensions["iris_model"].sha256
    info = [
        (labels, value)
        for (name, labels), value in _samples(app).items()
        if name == "inference_model_info"
    ]
    ((labels, value),) = info
    assert value == 1
    assert dict(labels)["sha256"] == sha
    assert dict(labels)["iris_model_version"] == iris_model.__version__


_WORKER = """
import sys
import iris_model
from inference_server.metrics import Metrics

metrics = Metrics(iris_model.train(seed=1).model, sys.argv[1])
metrics.observe_predictions([int(sys.argv[2])] * int(sys.argv[3]))
"""


def test_multiprocess_mode_sums_the_workers(tmp_path: Path) -> None:
    """Two worker processes write their samples; /metrics of a third sums both."""
    directory = str(tmp_path)
    environment = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": directory}
    for class_index, rows in ((0, 2), (2, 3)):
        subprocess.run(
            [sys.executable, "-c", _WORKER, directory, str(class_index), str(rows)],
            env=environment,
            check=True,
            timeout=120,
        )
    reader = Metrics(iris_model.train(seed=1).model, directory)
    assert reader.exposition is not reader.registry
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(reader.exposition_text().decode())
        for s in family.samples
    }
    assert samples[("inference_predictions_total", (("class_name", "setosa"),))] == 2
    assert samples[("inference_predictions_total", (("class_name", "virginica"),))] == 3
    assert samples[("inference_rows_per_request_count", ())] == 2
    assert samples[("inference_rows_per_request_sum", ())] == 5


def test_apps_do_not_share_metrics(make_app: Callable[..., Flask]) -> None:
    """Each app has its own registry (tests and multiple apps stay independent)."""
    first, second = make_app(), make_app()
    first.test_client().post("/predict", json={"features": SETOSA})
    assert first.extensions[METRICS_KEY].registry is not second.extensions[METRICS_KEY].registry
    assert _samples(second)[("inference_rows_per_request_count", ())] == 0
