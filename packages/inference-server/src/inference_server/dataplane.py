"""The dataplane: what every protocol's routes call, so inference is written once.

A protocol module's ``routes(plane)`` builds its routes from a :class:`Dataplane`: the
inference POSTs with :meth:`Dataplane.inference_route` (parse, the library's ``classify``,
render, prediction metrics) and the metadata GETs with the served model's facts and
:meth:`Dataplane.when_ready`. Everything else a request goes through (auth, body, errors,
latency metrics, access log) is the pipeline's (:mod:`inference_server.http.pipeline`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import iris_model
from inference_server.http.errors import ApiError, error_bytes
from inference_server.http.lifecycle import Lifecycle
from inference_server.http.pipeline import Answer, Request, Route
from inference_server.metrics import Metrics
from inference_server.protocols.base import Prediction, PredictionProtocol, short_string


@dataclass(frozen=True, slots=True)
class Dataplane:
    """The served model, its name, this worker's readiness and the metrics of its predictions."""

    model: iris_model.IrisModel
    model_name: str
    lifecycle: Lifecycle
    metrics: Metrics

    def infer(self, protocol: PredictionProtocol[Any], request: Request) -> Answer:
        """Parse, classify (the library validates the rows once), render and count."""
        call = protocol.parse(request.body, request.headers)
        prediction = Prediction.of(self.model, call.rows, probabilities=call.probabilities)
        answer = protocol.render(call, prediction)
        self.metrics.observe_predictions(prediction.index_array)
        return answer

    def inference_route(self, path: str, protocol: PredictionProtocol[Any]) -> Route:
        """``POST path`` answered by ``protocol``: needs auth, reads its media types."""
        protocol.max_rows = self.model.max_rows
        protocol.n_features = self.model.n_features
        return Route(
            path,
            "POST",
            partial(self.infer, protocol),
            auth=True,
            media_types=protocol.media_types,
        )

    def when_ready(self, document: bytes, not_ready: str) -> Answer:
        """``document`` (JSON bytes) while the worker is ready, else 503 (``{reason}``: why)."""
        if self.lifecycle.ready:
            return Answer(200, document)
        return Answer(503, error_bytes(not_ready.format(reason=self.lifecycle.reason)))

    def served_version(self, version: str) -> None:
        """Raise 404 unless ``version`` is the served model's (the only one this server has).

        Raises:
            ApiError: 400 for a version longer than any kept string; else 404.
        """
        short_string(version, "the model version in the path")
        if version != self.model.version:
            version_ = self.model.version
            served = f"it serves {version_}" if version_ else "it has no versions"
            raise ApiError(404, f"model {self.model_name} has no version {version!r}; {served}")
