"""The OpenAPI 3.1 document: a packaged template plus the served model's values.

The static part lives in ``openapi.template.json`` (the server's own routes and the shared
components) and in each protocol's fragment next to its module (its paths and schemas), all
shipped in the wheel. Placeholders
``${name}`` are filled in at start-up from the model (feature count and names, classes), the
settings (model name, body and row limits) and the versions, so the document describes
exactly what this process does; bearer security is added when tokens are configured. A string
that is exactly ``"${name}"`` takes the value itself (a number, a list, an object); elsewhere
the value is written into the text. The schemathesis suite checks the implementation against
the result. Which operations need a bearer token comes from the routes themselves.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from importlib import resources
from string import Template
from types import ModuleType
from typing import Any

import inference_server
import iris_model
from inference_server.http.pipeline import Route
from inference_server.settings import Settings

TEMPLATE = "openapi.template.json"


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


def _load(module: ModuleType, name: str) -> Any:
    package = module.__name__ if hasattr(module, "__path__") else module.__package__
    assert package is not None  # noqa: S101 - a module of a package
    return json.loads(resources.files(package).joinpath(name).read_text(encoding="utf-8"))


def build_openapi(
    model: iris_model.IrisModel,
    settings: Settings,
    protocols: Iterable[ModuleType],
    routes: Iterable[Route],
) -> dict[str, Any]:
    """Return the OpenAPI 3.1 document for ``model`` served with ``settings``.

    ``protocols`` add their fragments (``OPENAPI``); ``routes`` with ``auth`` get the bearer
    security requirement and a 401 answer when authentication is on.
    """
    template = _load(inference_server, TEMPLATE)
    for protocol in protocols:
        fragment = _load(protocol, protocol.OPENAPI)
        template["paths"].update(fragment["paths"])
        for kind, entries in fragment.get("components", {}).items():
            template["components"].setdefault(kind, {}).update(entries)
    document: dict[str, Any] = _fill(template, template_values(model, settings))
    if settings.auth_enabled:
        document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        for route in routes:
            if route.auth:
                operation = document["paths"][route.path][route.method.lower()]
                operation["security"] = [{"bearer": []}]
                operation["responses"]["401"] = {"$ref": "#/components/responses/Unauthorized"}
    return document
