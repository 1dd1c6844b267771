"""Open Inference Protocol (KServe V2) over REST, JSON tensors only.

Input: one FP32 or FP64 tensor of shape ``[n, 4]``, ``data`` flat (row-major) or nested.
Outputs: ``predict`` (INT64, ``[n]``) and/or ``predict_proba`` (FP64, ``[n, 3]``); without
an ``outputs`` list the answer holds ``predict`` only. A request ``id`` is echoed.
Triton's binary tensor extension is not supported (clients must use ``binary_data=False``).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request

import inference_server
from inference_server.auth import requires_auth
from inference_server.config import SETTINGS_KEY, Settings
from inference_server.errors import ApiError, error_response
from inference_server.health import current_lifecycle
from inference_server.jsonio import json_response, json_type, read_json_object
from inference_server.predictions import MODEL_NAME, current_model, predict

blueprint = Blueprint("v2", __name__, url_prefix="/v2")

SERVER_NAME = "inference-server"
INPUT_NAME = "input-0"
DATATYPES = frozenset({"FP32", "FP64"})
OUTPUTS = ("predict", "predict_proba")
_REQUEST_KEYS = frozenset({"id", "parameters", "inputs", "outputs"})
_INPUT_KEYS = frozenset({"name", "shape", "datatype", "data", "parameters"})
_OUTPUT_KEYS = frozenset({"name", "parameters"})


@blueprint.get("")
def server_metadata() -> Response:
    """Server name, version and protocol extensions (none)."""
    return json_response(
        {"name": SERVER_NAME, "version": inference_server.__version__, "extensions": []}
    )


@blueprint.get("/health/live")
def live() -> Response:
    """Server liveness: always 200 while answering."""
    return json_response({"live": True})


@blueprint.get("/health/ready")
def ready() -> Response:
    """Server readiness: 200 when the model serves, 503 before that or once draining."""
    lifecycle = current_lifecycle()
    if lifecycle.ready:
        return json_response({"ready": True})
    return error_response(503, f"not ready: {lifecycle.reason}")


@blueprint.get(f"/models/{MODEL_NAME}")
def model_metadata() -> Response:
    """The model's real tensor schema: feature names, classes, shapes and datatypes."""
    model = current_model()
    classes = list(model.classes)
    return json_response(
        {
            "name": MODEL_NAME,
            "platform": "sklearn",
            "inputs": [
                {
                    "name": INPUT_NAME,
                    "datatype": "FP32",
                    "shape": [-1, model.n_features],
                    "parameters": {"feature_names": list(model.feature_names)},
                }
            ],
            "outputs": [
                {
                    "name": "predict",
                    "datatype": "INT64",
                    "shape": [-1],
                    "parameters": {"classes": classes},
                },
                {
                    "name": "predict_proba",
                    "datatype": "FP64",
                    "shape": [-1, len(classes)],
                    "parameters": {"classes": classes},
                },
            ],
        }
    )


@blueprint.get(f"/models/{MODEL_NAME}/ready")
def model_ready() -> Response:
    """Model readiness: 200 ``{"name", "ready": true}`` or 503."""
    if current_lifecycle().ready:
        return json_response({"name": MODEL_NAME, "ready": True})
    return error_response(503, f"model {MODEL_NAME} is not ready")


def _object(value: Any, where: str, allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ApiError(400, f"{where} must be an object, got {json_type(value)}")
    unknown = sorted(value.keys() - allowed)
    if unknown:
        raise ApiError(400, f"{where}: unknown field(s): {', '.join(map(repr, unknown))}")
    return value


def _no_binary(container: dict[str, Any], where: str, key: str = "binary_data") -> None:
    if "parameters" not in container:
        return
    parameters = container["parameters"]
    if not isinstance(parameters, dict):
        raise ApiError(400, f"{where}.parameters must be an object, got {json_type(parameters)}")
    if parameters.get(key, False) is not False:
        raise ApiError(
            400, f"{where}: binary tensor data is not supported; send JSON data ({key}=false)"
        )


def _shape(value: Any, n_features: int) -> int:
    if (
        not isinstance(value, list)
        or len(value) != 2
        or any(isinstance(v, bool) or not isinstance(v, int) for v in value)
    ):
        raise ApiError(400, f"inputs[0].shape must be [n, {n_features}], got {value!r}"[:200])
    n_rows, n_columns = value
    if n_rows < 1 or n_columns != n_features:
        raise ApiError(
            400, f"inputs[0].shape must be [n, {n_features}] with n >= 1, got {value!r}"[:200]
        )
    return int(n_rows)


def _rows(tensor: dict[str, Any], n_features: int) -> list[Any]:
    for key in ("name", "shape", "datatype", "data"):
        if key not in tensor:
            raise ApiError(400, f"inputs[0] needs {key!r}")
    if not isinstance(tensor["name"], str):
        raise ApiError(400, f"inputs[0].name must be a string, got {json_type(tensor['name'])}")
    if not isinstance(tensor["datatype"], str) or tensor["datatype"] not in DATATYPES:
        raise ApiError(400, f"inputs[0].datatype must be FP32 or FP64, got {tensor['datatype']!r}")
    _no_binary(tensor, "inputs[0]")
    n_rows = _shape(tensor["shape"], n_features)
    data = tensor["data"]
    if not isinstance(data, list) or not data:
        raise ApiError(400, "inputs[0].data must be a non-empty array")
    if isinstance(data[0], list):  # nested: one list per row
        if len(data) != n_rows:
            raise ApiError(400, f"inputs[0].data has {len(data)} rows but shape says {n_rows}")
        return data
    if len(data) != n_rows * n_features:
        raise ApiError(
            400,
            f"inputs[0].data has {len(data)} values but shape [{n_rows}, {n_features}]"
            f" needs {n_rows * n_features}",
        )
    return [data[i : i + n_features] for i in range(0, len(data), n_features)]


def _requested_outputs(body: dict[str, Any]) -> list[str]:
    if "outputs" not in body:
        return ["predict"]
    value = body["outputs"]
    if not isinstance(value, list):
        raise ApiError(400, f"outputs must be an array, got {json_type(value)}")
    names: list[str] = []
    for k, item in enumerate(value):
        output = _object(item, f"outputs[{k}]", _OUTPUT_KEYS)
        name = output.get("name")
        if not isinstance(name, str) or name not in OUTPUTS:
            raise ApiError(400, f"outputs[{k}].name must be one of {', '.join(OUTPUTS)}")
        if name in names:
            raise ApiError(400, f"outputs[{k}]: {name!r} is requested twice")
        _no_binary(output, f"outputs[{k}]")
        names.append(name)
    return names or ["predict"]


@blueprint.post(f"/models/{MODEL_NAME}/infer")
@requires_auth
def infer() -> Response:
    """Run inference on one ``[n, 4]`` tensor; answer the requested outputs."""
    settings: Settings = current_app.extensions[SETTINGS_KEY]
    body = _object(read_json_object(request, settings.max_content_length), "request", _REQUEST_KEYS)
    request_id = body.get("id")
    if "id" in body and not isinstance(request_id, str):
        raise ApiError(400, f"id must be a string, got {json_type(request_id)}")
    _no_binary(body, "request", "binary_data_output")
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1:
        raise ApiError(400, f"inputs must be an array of exactly one tensor ({INPUT_NAME})")
    model = current_model()
    rows = _rows(_object(inputs[0], "inputs[0]", _INPUT_KEYS), model.n_features)
    wanted = _requested_outputs(body)
    result = predict(rows, probabilities="predict_proba" in wanted)
    n_rows = len(result.indices)
    outputs: list[dict[str, Any]] = []
    for name in wanted:
        if name == "predict":
            outputs.append(
                {"name": name, "datatype": "INT64", "shape": [n_rows], "data": result.indices}
            )
        else:
            proba = result.probabilities or []
            outputs.append(
                {
                    "name": name,
                    "datatype": "FP64",
                    "shape": [n_rows, len(result.classes)],
                    "data": [p for row in proba for p in row],
                }
            )
    answer: dict[str, Any] = {"model_name": MODEL_NAME, "outputs": outputs}
    if request_id is not None:
        answer["id"] = request_id
    return json_response(answer)
