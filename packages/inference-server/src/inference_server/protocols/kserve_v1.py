"""KServe V1 ``POST /v1/models/<name>:predict``: ``instances`` in, class indices out."""

from __future__ import annotations

from typing import Any

import iris_model
from inference_server.protocols.base import (
    Answer,
    Call,
    Headers,
    Prediction,
    PredictionProtocol,
    instances,
    json_answer,
    json_object,
    number_rows,
    refuse_unknown,
)
from inference_server.protocols.batches import plain_batch

_KEYS = frozenset({"instances"})


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

    def __init__(self, model_name: str) -> None:
        """Answer on the V1 path of ``model_name``."""
        self.route = predict_route(model_name)

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
