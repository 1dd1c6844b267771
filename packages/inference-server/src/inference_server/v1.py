"""KServe V1 protocol: model list, model readiness and ``:predict`` on ``instances``."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from inference_server.auth import requires_auth
from inference_server.config import SETTINGS_KEY, Settings
from inference_server.errors import ApiError, error_response
from inference_server.health import current_lifecycle
from inference_server.jsonio import json_response, read_json_object
from inference_server.predictions import MODEL_NAME, instances_of, predict

blueprint = Blueprint("v1", __name__, url_prefix="/v1/models")


@blueprint.get("")
def models() -> Response:
    """The names of the served models."""
    return json_response({"models": [MODEL_NAME]})


@blueprint.get(f"/{MODEL_NAME}")
def model_ready() -> Response:
    """200 with ``ready: true`` when the model serves, else 503."""
    if current_lifecycle().ready:
        return json_response({"name": MODEL_NAME, "ready": True})
    return error_response(503, f"Model with name {MODEL_NAME} is not ready.")


@blueprint.post(f"/{MODEL_NAME}:predict")
@requires_auth
def predict_route() -> Response:
    """Score ``{"instances": [[4 numbers], ...]}`` -> ``{"predictions": [class index, ...]}``."""
    settings: Settings = current_app.extensions[SETTINGS_KEY]
    body = read_json_object(request, settings.max_content_length)
    unknown = sorted(body.keys() - {"instances"})
    if unknown:
        raise ApiError(400, f"unknown field(s): {', '.join(map(repr, unknown))}")
    rows = instances_of(body)
    return json_response({"predictions": predict(rows, probabilities=False).indices})
