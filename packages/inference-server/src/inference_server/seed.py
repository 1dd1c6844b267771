"""The seed service's routes, kept wire-compatible: ``GET /`` and ``POST /predict``.

``{"features": [4 numbers]}`` -> ``{"prediction": <int>, "label": "setosa"}``;
``{"instances": [[4 numbers], ...]}`` -> ``{"predictions": [...], "labels": [...]}``;
``"probabilities": true`` adds class-labelled probabilities to either form.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request

from inference_server.auth import requires_auth
from inference_server.config import SETTINGS_KEY, Settings
from inference_server.errors import ApiError
from inference_server.jsonio import json_response, json_type, read_json_object
from inference_server.predictions import instances_of, predict

blueprint = Blueprint("seed", __name__)

_KEYS = frozenset({"features", "instances", "probabilities"})


@blueprint.get("/")
def index() -> Response:
    """The seed's health check: plain ``OK``."""
    return Response("OK", mimetype="text/plain")


def _rows(body: dict[str, Any]) -> tuple[list[Any], bool]:
    """Return the batch to score and whether it came as a single ``features`` row."""
    unknown = sorted(body.keys() - _KEYS)
    if unknown:
        raise ApiError(400, f"unknown field(s): {', '.join(map(repr, unknown))}")
    if ("features" in body) == ("instances" in body):
        raise ApiError(400, "send exactly one of 'features' (one row) or 'instances' (rows)")
    if "features" in body:
        features = body["features"]
        if not isinstance(features, list):
            raise ApiError(
                400, f"'features' must be an array of numbers, got {json_type(features)}"
            )
        return [features], True
    return instances_of(body), False


@blueprint.post("/predict")
@requires_auth
def predict_route() -> Response:
    """Score one row (``features``) or a batch (``instances``)."""
    settings: Settings = current_app.extensions[SETTINGS_KEY]
    body = read_json_object(request, settings.max_content_length)
    rows, single = _rows(body)
    want_proba = body.get("probabilities", False)
    if not isinstance(want_proba, bool):
        raise ApiError(400, f"'probabilities' must be true or false, got {json_type(want_proba)}")
    result = predict(rows, probabilities=want_proba)
    answer: dict[str, Any]
    if single:
        answer = {"prediction": result.indices[0], "label": result.labels[0]}
        if want_proba:
            answer["probabilities"] = result.labelled_probabilities()[0]
    else:
        answer = {"predictions": result.indices, "labels": result.labels}
        if want_proba:
            answer["probabilities"] = result.labelled_probabilities()
    return json_response(answer)
