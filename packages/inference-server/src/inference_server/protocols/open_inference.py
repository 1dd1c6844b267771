"""Open Inference Protocol (KServe V2) over REST: ``infer`` and the model's metadata.

Input: one FP32 or FP64 tensor of shape ``[n, n_features]``, ``data`` flat (row-major) or
nested. Outputs: ``predict`` (INT64, ``[n]``) and/or ``predict_proba`` (FP64,
``[n, n_classes]``); without an ``outputs`` list the answer holds ``predict`` only. A request
``id`` is echoed. JSON tensors only: the binary tensor extension is refused with a 400 that
says so (``parse`` receives the raw body and the headers, so it can be added here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import iris_model
from inference_server.errors import ApiError
from inference_server.protocols.base import (
    Answer,
    Call,
    Headers,
    Prediction,
    PredictionProtocol,
    json_answer,
    json_object,
    refuse_unknown,
)
from inference_server.strictjson import json_type

SERVER_NAME = "inference-server"
INPUT_NAME = "input-0"
DATATYPES = ("FP32", "FP64")
OUTPUTS = ("predict", "predict_proba")
_REQUEST_KEYS = frozenset({"id", "parameters", "inputs", "outputs"})
_INPUT_KEYS = frozenset({"name", "shape", "datatype", "data", "parameters"})
_OUTPUT_KEYS = frozenset({"name", "parameters"})


def model_path(model_name: str) -> str:
    """The V2 path of ``model_name`` (metadata; ``/ready`` and ``/infer`` below it)."""
    return f"/v2/models/{model_name}"


def server_metadata(version: str) -> dict[str, Any]:
    """``GET /v2``: server name, version, extensions (none)."""
    return {"name": SERVER_NAME, "version": version, "extensions": []}


def model_metadata(model_name: str, model: iris_model.IrisModel) -> dict[str, Any]:
    """``GET /v2/models/<name>``: the model's real tensor schema."""
    classes = list(model.classes)
    return {
        "name": model_name,
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


@dataclass(frozen=True, slots=True)
class InferContext:
    """What ``render`` needs again: the request id (echoed) and the outputs, in order."""

    request_id: str | None
    outputs: tuple[str, ...]


_DEFAULT = InferContext(None, ("predict",))


def _object(value: Any, where: str, allowed: frozenset[str]) -> dict[str, Any]:
    if type(value) is not dict:
        raise ApiError(400, f"{where} must be an object, got {json_type(value)}")
    refuse_unknown(value, allowed, where)
    return value


def _no_binary(container: dict[str, Any], where: str, key: str = "binary_data") -> None:
    if "parameters" not in container:
        return
    parameters = container["parameters"]
    if type(parameters) is not dict:
        raise ApiError(400, f"{where}.parameters must be an object, got {json_type(parameters)}")
    if parameters.get(key, False) is not False:
        raise ApiError(
            400, f"{where}: binary tensor data is not supported; send JSON data ({key}=false)"
        )


def _rows_of(shape: Any, n_features: int) -> int:
    if type(shape) is not list or len(shape) != 2 or any(type(v) is not int for v in shape):
        raise ApiError(400, f"inputs[0].shape must be [n, {n_features}], got {shape!r}"[:200])
    n_rows, n_columns = shape
    if n_rows < 1 or n_columns != n_features:
        raise ApiError(
            400, f"inputs[0].shape must be [n, {n_features}] with n >= 1, got {shape!r}"[:200]
        )
    return int(n_rows)


def tensor_rows(tensor: dict[str, Any], n_features: int) -> list[Any]:
    """The rows of the one input tensor (values are validated by the library).

    Raises:
        ApiError: A missing or wrong name, datatype, shape, parameters or data length (400).
    """
    for key in ("name", "shape", "datatype", "data"):
        if key not in tensor:
            raise ApiError(400, f"inputs[0] needs {key!r}")
    if type(tensor["name"]) is not str:
        raise ApiError(400, f"inputs[0].name must be a string, got {json_type(tensor['name'])}")
    if tensor["datatype"] not in DATATYPES:
        raise ApiError(400, f"inputs[0].datatype must be FP32 or FP64, got {tensor['datatype']!r}")
    _no_binary(tensor, "inputs[0]")
    n_rows = _rows_of(tensor["shape"], n_features)
    data = tensor["data"]
    if type(data) is not list or not data:
        raise ApiError(400, "inputs[0].data must be a non-empty array")
    if type(data[0]) is list:  # nested: one list per row
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


def _requested_outputs(document: dict[str, Any]) -> tuple[str, ...]:
    if "outputs" not in document:
        return _DEFAULT.outputs
    value = document["outputs"]
    if type(value) is not list:
        raise ApiError(400, f"outputs must be an array, got {json_type(value)}")
    names: list[str] = []
    for k, item in enumerate(value):
        output = _object(item, f"outputs[{k}]", _OUTPUT_KEYS)
        name = output.get("name")
        if name not in OUTPUTS:
            raise ApiError(400, f"outputs[{k}].name must be one of {', '.join(OUTPUTS)}")
        if name in names:
            raise ApiError(400, f"outputs[{k}]: {name!r} is requested twice")
        _no_binary(output, f"outputs[{k}]")
        names.append(name)
    return tuple(names) or _DEFAULT.outputs


class OpenInferenceProtocol(PredictionProtocol[InferContext]):
    """``POST /v2/models/<name>/infer`` with JSON tensors."""

    def __init__(self, model_name: str, n_features: int) -> None:
        """Answer on the infer path of ``model_name``, for rows of ``n_features`` values."""
        self.model_name = model_name
        self.n_features = n_features
        self.route = f"{model_path(model_name)}/infer"

    def parse(self, body: bytes, headers: Headers) -> Call[InferContext]:
        """One input tensor; optional ``id``, ``outputs`` and (non-binary) ``parameters``."""
        document = _object(json_object(body), "request", _REQUEST_KEYS)
        request_id = document.get("id")
        if "id" in document and type(request_id) is not str:
            raise ApiError(400, f"id must be a string, got {json_type(request_id)}")
        _no_binary(document, "request", "binary_data_output")
        inputs = document.get("inputs")
        if type(inputs) is not list or len(inputs) != 1:
            raise ApiError(400, f"inputs must be an array of exactly one tensor ({INPUT_NAME})")
        rows = tensor_rows(_object(inputs[0], "inputs[0]", _INPUT_KEYS), self.n_features)
        outputs = _requested_outputs(document)
        if request_id is None and outputs is _DEFAULT.outputs:
            context = _DEFAULT
        else:
            context = InferContext(request_id, outputs)
        return Call(rows, "predict_proba" in outputs, context)

    def render(self, call: Call[InferContext], prediction: Prediction) -> Answer:
        """The requested outputs in order, ``predict_proba`` flattened row-major."""
        n_rows = len(prediction.indices)
        outputs: list[dict[str, Any]] = []
        for name in call.context.outputs:
            if name == "predict":
                outputs.append(
                    {
                        "name": name,
                        "datatype": "INT64",
                        "shape": [n_rows],
                        "data": prediction.indices,
                    }
                )
            else:
                proba = prediction.probabilities
                outputs.append(
                    {
                        "name": name,
                        "datatype": "FP64",
                        "shape": [n_rows, len(prediction.classes)],
                        "data": [p for row in proba for p in row],
                    }
                )
        answer: dict[str, Any] = {"model_name": self.model_name, "outputs": outputs}
        if call.context.request_id is not None:
            answer["id"] = call.context.request_id
        return json_answer(answer)
