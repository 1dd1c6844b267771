"""The seed's ``POST /predict``: one row (``features``) or a batch (``instances``), with labels.

Request: ``{"features": [n values]}`` or ``{"features": {"column": value, ...}}``, or
``{"instances": [...]}`` of either, optionally
``"probabilities": true``. Answer: ``{"prediction": i, "label": "..."}`` (one row) or
``{"predictions": [...], "labels": [...]}``, plus class-labelled ``probabilities``.
``GET /`` is the seed's health check (plain ``OK``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from inference_server.http.errors import ApiError
from inference_server.http.pipeline import Answer, Headers, Route, constant, json_answer
from inference_server.http.strictjson import json_type
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

ROUTE = "/predict"
#: This module's part of the OpenAPI document (next to it in the package).
OPENAPI = "seed.openapi.json"
_KEYS = frozenset({"features", "instances", "probabilities"})
_FLAGS = frozenset({"probabilities"})


def routes(plane: Dataplane) -> list[Route]:
    """``GET /`` and ``POST /predict``."""
    return [
        Route("/", "GET", constant(b"OK", "text/plain; charset=utf-8")),
        plane.inference_route(ROUTE, SeedProtocol()),
    ]


class SeedProtocol(PredictionProtocol[bool]):
    """``POST /predict``; the call's context says whether one ``features`` row was sent."""

    def parse(self, body: bytes, headers: Headers) -> Call[bool]:
        """``features`` or ``instances``, and the optional ``probabilities`` flag."""
        batch = plain_batch(body, self.n_features, self.max_rows, _FLAGS)
        if batch is not None:
            matrix, flags = batch
            return Call(matrix, flags.get("probabilities", False), False)
        decoded = json_object(body, self.max_rows)
        document = decoded.value
        refuse_unknown(document, _KEYS)
        if ("features" in document) == ("instances" in document):
            raise ApiError(400, "send exactly one of 'features' (one row) or 'instances' (rows)")
        want_proba = document.get("probabilities", False)
        if type(want_proba) is not bool:
            raise ApiError(
                400, f"'probabilities' must be true or false, got {json_type(want_proba)}"
            )
        if "instances" in document:
            rows = instances(document)
            return Call(number_rows(rows, self.n_features, decoded, rows), want_proba, False)
        features = document["features"]
        if type(features) not in (list, dict):  # values in column order, or by column name
            raise ApiError(
                400,
                "'features' must be an array of values or an object of columns, "
                f"got {json_type(features)}",
            )
        return Call([features], want_proba, True)

    def render(self, call: Call[bool], prediction: Prediction) -> Answer:
        """One row: ``prediction``/``label``; a batch: ``predictions``/``labels``."""
        answer: dict[str, Any]
        if call.context:
            index = prediction.indices[0]
            answer = {"prediction": index, "label": prediction.classes[index]}
            if call.probabilities:
                answer["probabilities"] = prediction.labelled_probabilities()[0]
        else:
            answer = {"predictions": prediction.indices, "labels": prediction.labels}
            if call.probabilities:
                answer["probabilities"] = prediction.labelled_probabilities()
        return json_answer(answer)
