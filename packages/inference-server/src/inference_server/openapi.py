"""The OpenAPI 3.1 document: a packaged template plus the served model's values.

The static part lives in ``openapi.template.json`` (shipped in the wheel). Placeholders
``${name}`` are filled in at start-up from the model (feature count and names, classes), the
settings (model name, body and row limits) and the versions, so the document describes
exactly what this process does; bearer security is added when tokens are configured. A string
that is exactly ``"${name}"`` takes the value itself (a number, a list, an object); elsewhere
the value is written into the text. The schemathesis suite checks the implementation against
the result.
"""

from __future__ import annotations

import json
from importlib import resources
from string import Template
from typing import Any

import inference_server
import iris_model
from inference_server.settings import Settings

TEMPLATE = "openapi.template.json"
#: The operations that need a bearer token when authentication is on.
PREDICTION_OPERATIONS = (
    "/predict",
    "/v1/models/${model_name}:predict",
    "/v2/models/${model_name}/infer",
    "/v2/models/${model_name}/versions/{version}/infer",
)


def _fill(node: Any, values: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        return {_fill(key, values): _fill(value, values) for key, value in node.items()}
    if isinstance(node, list):
        return [_fill(item, values) for item in node]
    if isinstance(node, str) and "${" in node:
        if node.startswith("${") and node.endswith("}") and node[2:-1] in values:
            return values[node[2:-1]]
        return Template(node).substitute(values)
    return node


def template_values(model: iris_model.IrisModel, settings: Settings) -> dict[str, Any]:
    """The values the template's placeholders stand for."""
    classes = list(model.classes)
    return {
        "model_name": settings.model_name,
        "version": inference_server.__version__,
        "n_features": model.n_features,
        "feature_names": ", ".join(model.feature_names),
        "classes": classes,
        "max_class_index": len(classes) - 1,
        "class_probabilities": {
            name: {"type": "number", "minimum": 0, "maximum": 1} for name in classes
        },
        "max_abs_feature": model.max_abs_number,
        "min_feature": -model.max_abs_number,
        "max_rows": settings.max_rows,
        "max_values": model.n_features * settings.max_rows,
        "max_content_length": settings.body_limit(model.n_features),
    }


def build_openapi(model: iris_model.IrisModel, settings: Settings) -> dict[str, Any]:
    """Return the OpenAPI 3.1 document for ``model`` served with ``settings``."""
    template = json.loads(
        resources.files(inference_server).joinpath(TEMPLATE).read_text(encoding="utf-8")
    )
    values = template_values(model, settings)
    document: dict[str, Any] = _fill(template, values)
    if settings.auth_enabled:
        document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        for path in PREDICTION_OPERATIONS:
            operation = document["paths"][Template(path).substitute(values)]["post"]
            operation["security"] = [{"bearer": []}]
            operation["responses"]["401"] = {"$ref": "#/components/responses/Unauthorized"}
    return document
