"""Open Inference Protocol (KServe V2) over REST: ``infer`` and the model's metadata.

Input: one FP32 or FP64 tensor of shape ``[n, n_features]``, ``data`` flat (row-major) or
nested. Outputs: ``predict`` (INT64, ``[n]``) and/or ``predict_proba`` (``[n, n_classes]``,
in the input's datatype: FP32 in, FP32 out, as a model that computes in FP32 would answer;
the model computes in FP64 and the values are rounded once, at the end); without an
``outputs`` list the answer holds ``predict`` only. A request ``id`` is echoed.

Binary tensor data extension (Triton's ``binary_tensor_data``, what ``tritonclient.http``
sends by default): the ``Inference-Header-Content-Length`` header gives the length of the
JSON part of the body; an input with ``parameters.binary_data_size`` has no ``data``, its
values are the raw little-endian bytes after the JSON part. Outputs are sent the same way
when asked (request ``parameters.binary_data_output``, or an output's
``parameters.binary_data``), and the answer then carries the header too. Every size is
checked against the body actually received before any array is made, and the values go to
the library as a float matrix (``np.frombuffer``), validated by the same rules as JSON rows.

Metadata and health: ``GET /v2`` (server), ``/v2/health/live`` and ``/ready``,
``/v2/models/<name>`` (the model's tensor schema) and its ``/ready``; the same under
``/v2/models/<name>/versions/<version>`` for the served version (404 for any other).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

import inference_server
import iris_model
from inference_server.http.bodies import media_type
from inference_server.http.errors import JSON_MIMETYPE, ApiError
from inference_server.http.pipeline import Answer, Handler, Headers, Request, Route, constant
from inference_server.http.strictjson import dumps, json_type
from inference_server.protocols.base import (
    Call,
    Prediction,
    PredictionProtocol,
    json_object,
    number_rows,
    refuse_unknown,
    short_string,
)

if TYPE_CHECKING:
    from inference_server.dataplane import Dataplane

SERVER_NAME = "inference-server"
INPUT_NAME = "input-0"
DATATYPES = ("FP32", "FP64")
OUTPUTS = ("predict", "predict_proba")
_REQUEST_KEYS = frozenset({"id", "parameters", "inputs", "outputs"})
_INPUT_KEYS = frozenset({"name", "shape", "datatype", "data", "parameters"})
_OUTPUT_KEYS = frozenset({"name", "parameters"})

#: The extension's header: length of the JSON part of a body that has binary tensors after it.
BINARY_HEADER = "Inference-Header-Content-Length"
BINARY_MIMETYPE = "application/octet-stream"
BINARY_EXTENSION = "binary_tensor_data"
#: Byte layout of each input datatype in binary form (little-endian, row-major).
#: Each float datatype's little-endian NumPy type (binary tensors, FP32 probabilities).
_FLOAT_TYPES: dict[str, np.dtype[Any]] = {"FP32": np.dtype("<f4"), "FP64": np.dtype("<f8")}
#: A longer header value cannot be a length within any accepted body (int() stays cheap).
_MAX_LENGTH_DIGITS = 18
#: This module's part of the OpenAPI document (next to it in the package).
OPENAPI = "open_inference.openapi.json"


def routes(plane: Dataplane) -> list[Route]:
    """Server metadata and health, the model's metadata and readiness, and its infer.

    Under ``/versions/{version}``: the same for the served version, 404 for any other.
    """
    name = plane.model_name
    model = model_path(name)
    versioned = model_path(name, "{version}")
    metadata = dumps(model_metadata(name, plane.model))
    ready = dumps({"name": name, "ready": True})
    not_ready = f"model {name} is not ready"
    protocol = OpenInferenceProtocol(name, plane.model.n_features, plane.model.version)
    infer = plane.inference_route(f"{model}/infer", protocol)

    def served(answer: Handler) -> Handler:
        """``answer`` for the served version's path, 404 for any other version."""

        def handler(request: Request) -> Answer:
            plane.served_version(request.params["version"])
            return answer(request)

        return handler

    def model_ready(_request: Request) -> Answer:
        return plane.when_ready(ready, not_ready)

    return [
        Route("/v2", "GET", constant(server_metadata(inference_server.__version__))),
        Route("/v2/health/live", "GET", constant({"live": True})),
        Route(
            "/v2/health/ready",
            "GET",
            lambda _: plane.when_ready(dumps({"ready": True}), "not ready: {reason}"),
        ),
        Route(model, "GET", constant(metadata)),
        Route(f"{model}/ready", "GET", model_ready),
        infer,
        Route(versioned, "GET", served(constant(metadata))),
        Route(f"{versioned}/ready", "GET", served(model_ready)),
        dataclasses.replace(infer, path=f"{versioned}/infer", handler=served(infer.handler)),
    ]


def model_path(model_name: str, version: str | None = None) -> str:
    """The V2 path of ``model_name`` (metadata; ``/ready`` and ``/infer`` below it).

    With ``version``: the path of that version of the model (``.../versions/<version>``).
    """
    if version is None:
        return f"/v2/models/{model_name}"
    return f"/v2/models/{model_name}/versions/{version}"


def server_metadata(version: str) -> dict[str, Any]:
    """``GET /v2``: server name, version, extensions (binary tensor data)."""
    return {"name": SERVER_NAME, "version": version, "extensions": [BINARY_EXTENSION]}


def model_metadata(model_name: str, model: iris_model.IrisModel) -> dict[str, Any]:
    """``GET /v2/models/<name>``: the model's real tensor schema, and its version if it has one."""
    classes = list(model.classes)
    document: dict[str, Any] = {"name": model_name}
    if model.version is not None:
        document["versions"] = [model.version]
    return document | {
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
                "datatype": "FP32",  # the input's: FP64 when the input is FP64
                "shape": [-1, len(classes)],
                "parameters": {"classes": classes},
            },
        ],
    }


@dataclass(frozen=True, slots=True)
class InferContext:
    """What ``render`` needs again about a request.

    Attributes:
        request_id: Echoed in the answer.
        outputs: The outputs in order.
        binary: Which of them go in binary form.
        proba_datatype: The datatype of ``predict_proba`` (the input's).
    """

    request_id: str | None
    outputs: tuple[str, ...]
    binary: tuple[bool, ...]
    proba_datatype: str = "FP64"


_DEFAULT = InferContext(None, ("predict",), (False,))


def _object(value: Any, where: str, allowed: frozenset[str]) -> dict[str, Any]:
    if type(value) is not dict:
        raise ApiError(400, f"{where} must be an object, got {json_type(value)}")
    refuse_unknown(value, allowed, where)
    return value


def _parameters(container: dict[str, Any], where: str) -> dict[str, Any]:
    parameters = container.get("parameters", {})
    if type(parameters) is not dict:
        raise ApiError(400, f"{where}.parameters must be an object, got {json_type(parameters)}")
    # Kept while the request lives (and a key may be quoted in an error): bounded.
    for key, value in parameters.items():
        short_string(key, f"a key of {where}.parameters")
        if type(value) is str:
            short_string(value, f"{where}.parameters.{key}")
    return parameters


def _flag(parameters: dict[str, Any], key: str, where: str, default: bool) -> bool:
    value = parameters.get(key, default)
    if type(value) is not bool:
        raise ApiError(400, f"{where}.parameters.{key} must be true or false, got {value!r}"[:200])
    return value


def split_body(body: bytes, headers: Headers) -> tuple[bytes, memoryview | None]:
    """The JSON part of an infer body and the binary tensor bytes after it (None: no header).

    Raises:
        ApiError: 400 for a header that is not a length within the body, or a binary body
            without the header; 415 for binary tensors under a JSON Content-Type.
    """
    kind = media_type(headers.get("Content-Type") or "")[0]
    value = headers.get(BINARY_HEADER)
    if value is None:
        if kind == BINARY_MIMETYPE:
            raise ApiError(
                400,
                f"a {BINARY_MIMETYPE} body needs the {BINARY_HEADER} header"
                " (binary tensor data extension)",
            )
        return body, None
    if kind == JSON_MIMETYPE:
        raise ApiError(
            415,
            f"a body with binary tensors ({BINARY_HEADER}) is not {JSON_MIMETYPE}; send"
            f" it as {BINARY_MIMETYPE} or without a Content-Type",
        )
    value = value.strip()
    if not (value.isascii() and value.isdigit() and len(value) <= _MAX_LENGTH_DIGITS):
        raise ApiError(400, f"{BINARY_HEADER} must be a non-negative integer, got {value!r}"[:200])
    length = int(value)
    if length > len(body):
        raise ApiError(400, f"{BINARY_HEADER} is {length} but the body has only {len(body)} bytes")
    return body[:length], memoryview(body)[length:]


def _binary_rows(
    tensor: dict[str, Any], size: Any, binary: memoryview | None, n_features: int
) -> npt.NDArray[Any]:
    """The rows of an input sent as raw bytes, once every size has been checked."""
    if binary is None:
        raise ApiError(
            400, f"inputs[0].parameters.binary_data_size needs the {BINARY_HEADER} header"
        )
    if "data" in tensor:
        raise ApiError(400, "inputs[0] has both data and parameters.binary_data_size")
    if type(size) is not int or size < 0:
        raise ApiError(
            400,
            f"inputs[0].parameters.binary_data_size must be a non-negative integer, got {size!r}"[
                :200
            ],
        )
    n_rows = _rows_of(tensor["shape"], n_features)
    dtype = _FLOAT_TYPES[tensor["datatype"]]
    expected = n_rows * n_features * dtype.itemsize
    if size != expected:
        raise ApiError(
            400,
            f"inputs[0].parameters.binary_data_size is {size} but shape [{n_rows},"
            f" {n_features}] of {tensor['datatype']} needs {expected} bytes",
        )
    if len(binary) != size:
        raise ApiError(
            400,
            f"the body has {len(binary)} bytes after the JSON header but the inputs'"
            f" binary_data_size add up to {size}",
        )
    return np.frombuffer(binary, dtype=dtype).reshape(n_rows, n_features)


def _probabilities(prediction: Prediction, datatype: str) -> npt.NDArray[Any]:
    """The probability matrix in ``datatype`` (little-endian, as binary tensors are sent)."""
    return np.asarray(prediction.probability_matrix, dtype=_FLOAT_TYPES[datatype])


def _rows_of(shape: Any, n_features: int) -> int:
    if type(shape) is not list or len(shape) != 2 or any(type(v) is not int for v in shape):
        raise ApiError(400, f"inputs[0].shape must be [n, {n_features}], got {shape!r}"[:200])
    n_rows, n_columns = shape
    if n_rows < 1 or n_columns != n_features:
        raise ApiError(
            400, f"inputs[0].shape must be [n, {n_features}] with n >= 1, got {shape!r}"[:200]
        )
    return int(n_rows)


def tensor_rows(
    tensor: dict[str, Any], n_features: int, binary: memoryview | None = None
) -> list[Any] | npt.NDArray[Any]:
    """The rows of the one input tensor (values are validated by the library).

    ``binary`` is the body after the JSON part when the request uses the binary extension.

    Raises:
        ApiError: A missing or wrong name, datatype, shape, parameters or data length, or
            binary sizes that do not match the shape or the body (400).
    """
    for key in ("name", "shape", "datatype"):
        if key not in tensor:
            raise ApiError(400, f"inputs[0] needs {key!r}")
    if type(tensor["name"]) is not str:
        raise ApiError(400, f"inputs[0].name must be a string, got {json_type(tensor['name'])}")
    if tensor["datatype"] not in DATATYPES:
        raise ApiError(400, f"inputs[0].datatype must be FP32 or FP64, got {tensor['datatype']!r}")
    parameters = _parameters(tensor, "inputs[0]")
    if parameters.get("binary_data", False) is not False:
        raise ApiError(400, "inputs[0]: binary inputs are marked by parameters.binary_data_size")
    if "binary_data_size" in parameters:
        return _binary_rows(tensor, parameters["binary_data_size"], binary, n_features)
    if binary:
        raise ApiError(
            400,
            f"the body has {len(binary)} bytes after the JSON header but no input has"
            " parameters.binary_data_size",
        )
    if "data" not in tensor:
        raise ApiError(400, "inputs[0] needs 'data'")
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


def _requested_outputs(
    document: dict[str, Any], binary_default: bool
) -> tuple[tuple[str, ...], tuple[bool, ...]]:
    """The output names in order, and whether each goes in binary form."""
    value = document.get("outputs", [])
    if type(value) is not list:
        raise ApiError(400, f"outputs must be an array, got {json_type(value)}")
    names: list[str] = []
    binary: list[bool] = []
    for k, item in enumerate(value):
        output = _object(item, f"outputs[{k}]", _OUTPUT_KEYS)
        name = output.get("name")
        if name not in OUTPUTS:
            raise ApiError(400, f"outputs[{k}].name must be one of {', '.join(OUTPUTS)}")
        if name in names:
            raise ApiError(400, f"outputs[{k}]: {name!r} is requested twice")
        parameters = _parameters(output, f"outputs[{k}]")
        binary.append(_flag(parameters, "binary_data", f"outputs[{k}]", binary_default))
        names.append(name)
    if not names:
        return _DEFAULT.outputs, (binary_default,)
    return tuple(names), tuple(binary)


class OpenInferenceProtocol(PredictionProtocol[InferContext]):
    """``POST /v2/models/<name>/infer`` with JSON or binary tensors."""

    media_types = frozenset({JSON_MIMETYPE, BINARY_MIMETYPE})

    def __init__(self, model_name: str, n_features: int, model_version: str | None = None) -> None:
        """Answer for ``model_name``, rows of ``n_features`` values.

        ``model_version`` (the served model's, when it has one) goes into every answer, as
        the protocol asks.
        """
        self.n_features = n_features
        self._identity: dict[str, Any] = {"model_name": model_name}
        if model_version is not None:
            self._identity["model_version"] = model_version

    def _document(self, call: Call[InferContext], outputs: list[dict[str, Any]]) -> dict[str, Any]:
        """The answer's JSON: the model's identity, ``outputs`` and the echoed request id."""
        answer: dict[str, Any] = {**self._identity, "outputs": outputs}
        if call.context.request_id is not None:
            answer["id"] = call.context.request_id
        return answer

    def parse(self, body: bytes, headers: Headers) -> Call[InferContext]:
        """One input tensor (JSON or binary); optional ``id``, ``outputs``, ``parameters``."""
        header, binary = split_body(body, headers)
        decoded = json_object(header, self.max_rows)
        document = _object(decoded.value, "request", _REQUEST_KEYS)
        request_id = document.get("id")
        if "id" in document:
            if type(request_id) is not str:
                raise ApiError(400, f"id must be a string, got {json_type(request_id)}")
            short_string(request_id, "id")  # echoed in the answer
        binary_default = _flag(
            _parameters(document, "request"), "binary_data_output", "request", False
        )
        inputs = document.get("inputs")
        if type(inputs) is not list or len(inputs) != 1:
            raise ApiError(400, f"inputs must be an array of exactly one tensor ({INPUT_NAME})")
        tensor = _object(inputs[0], "inputs[0]", _INPUT_KEYS)
        rows = tensor_rows(tensor, self.n_features, binary)
        if type(rows) is list:
            rows = number_rows(rows, self.n_features, decoded, tensor["data"])
        outputs, as_binary = _requested_outputs(document, binary_default)
        if request_id is None and outputs == _DEFAULT.outputs and as_binary == _DEFAULT.binary:
            context = _DEFAULT
        else:
            context = InferContext(request_id, outputs, as_binary, tensor["datatype"])
        return Call(rows, "predict_proba" in outputs, context)

    def render(self, call: Call[InferContext], prediction: Prediction) -> Answer:
        """The requested outputs in order, ``predict_proba`` flattened row-major."""
        if any(call.context.binary):
            return self._render_binary(call, prediction)
        n_rows = len(prediction.index_array)
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
                datatype = call.context.proba_datatype
                outputs.append(
                    {
                        "name": name,
                        "datatype": datatype,
                        "shape": [n_rows, len(prediction.classes)],
                        # FP32 as a float32 array: orjson writes each value's shortest float32
                        # form (0.1, not 0.10000000149011612).
                        "data": prediction.flat_probabilities
                        if datatype == "FP64"
                        else _probabilities(prediction, datatype).ravel(),
                    }
                )
        return Answer(200, dumps(self._document(call, outputs)))

    def _render_binary(self, call: Call[InferContext], prediction: Prediction) -> Answer:
        """The JSON header, then the raw bytes of each binary output in order."""
        n_rows = len(prediction.index_array)
        outputs: list[dict[str, Any]] = []
        chunks: list[bytes] = []
        for name, as_binary in zip(call.context.outputs, call.context.binary, strict=True):
            if name == "predict":
                array = prediction.index_array.astype("<i8", copy=False)
                output: dict[str, Any] = {"name": name, "datatype": "INT64", "shape": [n_rows]}
            else:
                array = _probabilities(prediction, call.context.proba_datatype)
                output = {
                    "name": name,
                    "datatype": call.context.proba_datatype,
                    "shape": [n_rows, len(prediction.classes)],
                }
            if as_binary:
                raw = array.tobytes()
                output["parameters"] = {"binary_data_size": len(raw)}
                chunks.append(raw)
            else:
                output["data"] = array.ravel()
            outputs.append(output)
        header = dumps(self._document(call, outputs))
        return Answer(
            200,
            b"".join([header, *chunks]),
            (("Content-Type", BINARY_MIMETYPE), (BINARY_HEADER, str(len(header)))),
        )
