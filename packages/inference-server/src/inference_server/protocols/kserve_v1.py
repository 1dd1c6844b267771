"""KServe V1: ``POST /v1/models/<name>:predict`` (``instances`` in, class indices out).

Metadata: ``GET /v1/models`` (the served names) and ``GET /v1/models/<name>`` (readiness,
with the model's version and digest).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import iris_model
from inference_server.http.pipeline import Answer, Headers, Route, constant, json_answer
from inference_server.http.strictjson import dumps
from inference_server.protocols.base import (
    Call,
    Prediction,
    PredictionProtocol,
    instances,
    json_object,
    number_rows,
    refuse_unknown,
)
from inference_server.protocols.batches import plain_batch

if TYPE_CHECKING:
    from inference_server.dataplane import Dataplane

_KEYS = frozenset({"instances"})
#: This module's part of the OpenAPI document (next to it in the package).
OPENAPI = "kserve_v1.openapi.json"


def routes(plane: Dataplane) -> list[Route]:
    """The served models, the model's readiness and metadata, and its ``:predict``."""
    name = plane.model_name
    metadata = dumps(model_metadata(name, plane.model))
    not_ready = f"Model with name {name} is not ready."
    return [
        Route("/v1/models", "GET", constant({"models": [name]})),
        Route(f"/v1/models/{name}", "GET", lambda _: plane.when_ready(metadata, not_ready)),
        plane.inference_route(predict_route(name), KServeV1Protocol()),
    ]


def predict_route(model_name: str) -> str:
    """The V1 prediction path of ``model_name``."""
    return f"/v1/models/{model_name}:predict"


def model_ready(model_name: str) -> dict[str, Any]:
    """The V1 (and V2) model readiness document."""
    return {"name": model_name, "ready": True}


def model_metadata(model_name: str, model: iris_model.IrisModel) -> dict[str, Any]:
    """``GET /v1/models/<name>``: readiness, plus the model's version and directory digest.

    KServe's V1 answer is ``{"name", "ready"}``; ``model_version`` and ``digest`` are added
    when the model has them (a model trained at start-up has neither), so a client can tell
    which model a replica serves.
    """
    document = model_ready(model_name)
    if model.version is not None:
        document["model_version"] = model.version
    if model.digest is not None:
        document["digest"] = model.digest
    return document


class KServeV1Protocol(PredictionProtocol[None]):
    """``{"instances": [[n numbers], ...]}`` -> ``{"predictions": [class index, ...]}``."""

    def parse(self, body: bytes, headers: Headers) -> Call[None]:
        """Only ``instances``."""
        batch = plain_batch(body, self.n_features, self.max_rows)
        if batch is not None:
            return Call(batch[0], False, None)
        decoded = json_object(body, self.max_rows)
        document = decoded.value
        refuse_unknown(document, _KEYS)
        rows = instances(document)
        return Call(number_rows(rows, self.n_features, decoded, rows), False, None)

    def render(self, call: Call[None], prediction: Prediction) -> Answer:
        """Class indices, as KServe's sklearn server answers them."""
        return json_answer({"predictions": prediction.indices})
