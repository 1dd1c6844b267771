"""The OpenAPI 3.1 document of every route and error, built from the served model.

Built once at start-up from the model's real schema (feature names, classes, row limit) and
the settings (body limit, whether bearer auth is on), so it describes exactly what this
process does. The schemathesis suite checks the implementation against it.
"""

from __future__ import annotations

from typing import Any

import inference_server
import iris_model
from inference_server.settings import Settings

_JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {_JSON: {"schema": schema}}


def _ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": _json_content(schema)}


def _error(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{name}"}


def _schemas(model: iris_model.IrisModel, settings: Settings) -> dict[str, Any]:
    model_name = settings.model_name
    n_features = model.n_features
    classes = list(model.classes)
    number = {
        "type": "number",
        "minimum": -iris_model.MAX_ABS_FEATURE,
        "maximum": iris_model.MAX_ABS_FEATURE,
    }
    row = {
        "type": "array",
        "description": "One row: " + ", ".join(model.feature_names) + ".",
        "items": number,
        "minItems": n_features,
        "maxItems": n_features,
    }
    rows = {"type": "array", "items": _ref("Row"), "minItems": 1, "maxItems": settings.max_rows}
    class_index = {"type": "integer", "minimum": 0, "maximum": len(classes) - 1}
    label = {"type": "string", "enum": classes}
    probabilities = {
        "type": "object",
        "properties": {name: {"type": "number", "minimum": 0, "maximum": 1} for name in classes},
        "required": classes,
        "additionalProperties": False,
    }
    probabilities_flag = {
        "type": "boolean",
        "default": False,
        "description": "Add class-labelled probabilities.",
    }
    no_binary = {"type": "object", "properties": {"binary_data": {"const": False}}}
    return {
        "Error": {
            "type": "object",
            "properties": {
                "error": {"type": "string"},
                "details": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["error"],
        },
        "Row": row,
        "Rows": rows,
        "PredictRequest": {
            "oneOf": [
                {
                    "type": "object",
                    "properties": {"features": _ref("Row"), "probabilities": probabilities_flag},
                    "required": ["features"],
                    "additionalProperties": False,
                },
                {
                    "type": "object",
                    "properties": {"instances": _ref("Rows"), "probabilities": probabilities_flag},
                    "required": ["instances"],
                    "additionalProperties": False,
                },
            ]
        },
        "PredictResponse": {
            "oneOf": [
                {
                    "type": "object",
                    "properties": {
                        "prediction": class_index,
                        "label": label,
                        "probabilities": probabilities,
                    },
                    "required": ["prediction", "label"],
                    "additionalProperties": False,
                },
                {
                    "type": "object",
                    "properties": {
                        "predictions": {"type": "array", "items": class_index},
                        "labels": {"type": "array", "items": label},
                        "probabilities": {"type": "array", "items": probabilities},
                    },
                    "required": ["predictions", "labels"],
                    "additionalProperties": False,
                },
            ]
        },
        "V1PredictRequest": {
            "type": "object",
            "properties": {"instances": _ref("Rows")},
            "required": ["instances"],
            "additionalProperties": False,
        },
        "V1PredictResponse": {
            "type": "object",
            "properties": {"predictions": {"type": "array", "items": class_index}},
            "required": ["predictions"],
        },
        "ModelReady": {
            "type": "object",
            "properties": {"name": {"const": model_name}, "ready": {"type": "boolean"}},
            "required": ["name", "ready"],
        },
        "InferRequest": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "parameters": {
                    "type": "object",
                    "properties": {"binary_data_output": {"const": False}},
                },
                "inputs": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 1,
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "shape": {
                                "type": "array",
                                "description": "[n, n_features]; n must match data.",
                                "prefixItems": [
                                    {"type": "integer", "minimum": 1, "maximum": settings.max_rows},
                                    {"const": n_features},
                                ],
                                "minItems": 2,
                                "maxItems": 2,
                            },
                            "datatype": {"enum": sorted(["FP32", "FP64"])},
                            "data": {
                                "description": "Row-major flat values, or one array per row.",
                                "oneOf": [
                                    {
                                        "type": "array",
                                        "items": number,
                                        "minItems": n_features,
                                        "maxItems": n_features * settings.max_rows,
                                    },
                                    _ref("Rows"),
                                ],
                            },
                            "parameters": no_binary,
                        },
                        "required": ["name", "shape", "datatype", "data"],
                        "additionalProperties": False,
                    },
                },
                "outputs": {
                    "type": "array",
                    "uniqueItems": True,
                    "maxItems": 2,
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"enum": ["predict", "predict_proba"]},
                            "parameters": no_binary,
                        },
                        "required": ["name"],
                        "additionalProperties": False,
                    },
                },
            },
            "required": ["inputs"],
            "additionalProperties": False,
        },
        "InferResponse": {
            "type": "object",
            "properties": {
                "model_name": {"const": model_name},
                "id": {"type": "string"},
                "outputs": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"enum": ["predict", "predict_proba"]},
                            "datatype": {"enum": ["INT64", "FP64"]},
                            "shape": {"type": "array", "items": {"type": "integer"}},
                            "data": {"type": "array", "items": {"type": "number"}},
                        },
                        "required": ["name", "datatype", "shape", "data"],
                    },
                },
            },
            "required": ["model_name", "outputs"],
        },
        "TensorMetadata": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "datatype": {"type": "string"},
                "shape": {"type": "array", "items": {"type": "integer"}},
                "parameters": {"type": "object"},
            },
            "required": ["name", "datatype", "shape"],
        },
    }


def _responses(settings: Settings) -> dict[str, Any]:
    def error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
        response: dict[str, Any] = {
            "description": description,
            "content": _json_content(_ref("Error")),
        }
        if headers:
            response["headers"] = headers
        return response

    return {
        "BadRequest": error(
            "Malformed request: invalid JSON, NaN/Infinity, duplicate keys, too deep, wrong"
            " fields, shapes or types."
        ),
        "Unauthorized": error(
            "Missing or invalid bearer token.",
            {"WWW-Authenticate": {"schema": {"type": "string"}, "required": True}},
        ),
        "PayloadTooLarge": error(
            f"Body over {settings.max_content_length} bytes or batch over {settings.max_rows} rows."
        ),
        "UnsupportedMediaType": error("Content-Type is neither application/json nor absent."),
        "NotReady": error("The model is not loaded, or the worker is shutting down."),
    }


def _predict_operation(
    summary: str, request: str, response: str, settings: Settings
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "requestBody": {"required": True, "content": _json_content(_ref(request))},
        "responses": {
            "200": _ok("Predictions.", _ref(response)),
            "400": _error("BadRequest"),
            "413": _error("PayloadTooLarge"),
            "415": _error("UnsupportedMediaType"),
        },
    }
    if settings.auth_enabled:
        operation["security"] = [{"bearer": []}]
        operation["responses"]["401"] = _error("Unauthorized")
    return operation


def _probe(summary: str, schema: dict[str, Any], can_fail: bool = True) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": _ok(summary, schema)}
    if can_fail:
        responses["503"] = _error("NotReady")
    return {"summary": summary, "responses": responses}


def build_openapi(model: iris_model.IrisModel, settings: Settings) -> dict[str, Any]:
    """Return the OpenAPI 3.1 document for ``model`` served with ``settings``."""
    model_name = settings.model_name
    status = {"type": "object", "properties": {"status": {"type": "string"}}}
    tensor_list = {"type": "array", "items": _ref("TensorMetadata")}
    paths: dict[str, Any] = {
        "/": {
            "get": {
                "summary": "Seed health check.",
                "responses": {
                    "200": {
                        "description": "The text OK.",
                        "content": {"text/plain": {"schema": {"const": "OK"}}},
                    }
                },
            }
        },
        "/predict": {
            "post": _predict_operation(
                "Classify one row (features) or a batch (instances).",
                "PredictRequest",
                "PredictResponse",
                settings,
            )
        },
        "/healthz": {"get": _probe("Liveness.", status, can_fail=False)},
        "/readyz": {
            "get": _probe("Readiness: model loaded, self-test passed, not draining.", status)
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics of all workers.",
                "responses": {
                    "200": {
                        "description": "Prometheus text exposition.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document.",
                "responses": {"200": _ok("OpenAPI 3.1 document.", {"type": "object"})},
            }
        },
        "/v1/models": {
            "get": {
                "summary": "KServe V1: served model names.",
                "responses": {
                    "200": _ok(
                        "Model names.",
                        {
                            "type": "object",
                            "properties": {
                                "models": {"type": "array", "items": {"type": "string"}}
                            },
                            "required": ["models"],
                        },
                    )
                },
            }
        },
        f"/v1/models/{model_name}": {
            "get": _probe("KServe V1: model readiness.", _ref("ModelReady"))
        },
        f"/v1/models/{model_name}:predict": {
            "post": _predict_operation(
                "KServe V1 prediction on instances.",
                "V1PredictRequest",
                "V1PredictResponse",
                settings,
            )
        },
        "/v2": {
            "get": _probe(
                "Open Inference Protocol: server metadata.",
                {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "version": {"type": "string"},
                        "extensions": {"type": "array", "items": {"type": "string"}},
                    },
                    "required": ["name", "version", "extensions"],
                },
                can_fail=False,
            )
        },
        "/v2/health/live": {
            "get": _probe(
                "Open Inference Protocol: server liveness.",
                {"type": "object", "properties": {"live": {"type": "boolean"}}},
                can_fail=False,
            )
        },
        "/v2/health/ready": {
            "get": _probe(
                "Open Inference Protocol: server readiness.",
                {"type": "object", "properties": {"ready": {"type": "boolean"}}},
            )
        },
        f"/v2/models/{model_name}": {
            "get": _probe(
                "Open Inference Protocol: model metadata (the model's real schema).",
                {
                    "type": "object",
                    "properties": {
                        "name": {"const": model_name},
                        "platform": {"type": "string"},
                        "inputs": tensor_list,
                        "outputs": tensor_list,
                    },
                    "required": ["name", "platform", "inputs", "outputs"],
                },
                can_fail=False,
            )
        },
        f"/v2/models/{model_name}/ready": {
            "get": _probe("Open Inference Protocol: model readiness.", _ref("ModelReady"))
        },
        f"/v2/models/{model_name}/infer": {
            "post": _predict_operation(
                "Open Inference Protocol inference (JSON tensors).",
                "InferRequest",
                "InferResponse",
                settings,
            )
        },
    }
    components: dict[str, Any] = {
        "schemas": _schemas(model, settings),
        "responses": _responses(settings),
    }
    if settings.auth_enabled:
        components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Inference server",
            "version": inference_server.__version__,
            "description": "Seed, KServe V1 and Open Inference Protocol V2 routes over one"
            ' classifier. Every error body is {"error": "<message>"}.',
        },
        "paths": paths,
        "components": components,
    }
