"""The Flask side: every route that is not a prediction, the request hooks and the errors.

Prediction routes never reach Flask (:class:`inference_server.service.PredictionRoutes`
answers them in front of it). Flask keeps the rest: the seed's ``GET /``, the probes, KServe
V1 and Open Inference V2 metadata and readiness, ``/metrics``, ``/openapi.json`` and the
JSON error pages of everything it routes, with the request id, access log and latency
metrics of the prediction core (same objects, same labels).
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.wrappers import Response as BaseResponse

import inference_server
import iris_model
from inference_server.errors import (
    INTERNAL_ERROR,
    JSON_MIMETYPE,
    ApiError,
    api_error_for,
    bounded,
    error_bytes,
)
from inference_server.lifecycle import LIFECYCLE_KEY, Lifecycle
from inference_server.logs import REQUEST_ID_HEADER, AccessLog, request_ids
from inference_server.metrics import METRICS_KEY, UNMATCHED_ROUTE, Metrics
from inference_server.protocols import kserve_v1, open_inference
from inference_server.protocols.base import short_string
from inference_server.strictjson import dumps


def json_response(document: Any, status: int = 200) -> Response:
    """A JSON response encoded with :func:`~inference_server.strictjson.dumps`."""
    return Response(dumps(document), status=status, mimetype=JSON_MIMETYPE)


def error_response(status: int, message: str) -> Response:
    """A JSON error response ``{"error": message}``."""
    return Response(error_bytes(message), status=status, mimetype=JSON_MIMETYPE)


def _when_ready(document: Any, not_ready: str) -> Response:
    """``document`` while the worker is ready, else 503 (``{reason}`` says why not)."""
    lifecycle: Lifecycle = current_app.extensions[LIFECYCLE_KEY]
    if lifecycle.ready:
        return json_response(document)
    return error_response(503, not_ready.format(reason=lifecycle.reason))


def blueprint(model_name: str, model: iris_model.IrisModel, openapi_document: bytes) -> Blueprint:
    """The GET routes of ``model`` served as ``model_name``."""
    routes = Blueprint("inference_server", __name__)
    v1_model = f"/v1/models/{model_name}"
    v2_model = open_inference.model_path(model_name)
    metadata = dumps(open_inference.model_metadata(model_name, model))
    model_ready = kserve_v1.model_ready(model_name)
    v1_metadata = kserve_v1.model_metadata(model_name, model)
    versioned = open_inference.model_path(model_name, "<version>")

    def served_version(version: str) -> None:
        """Raise 404 unless ``version`` is the served model's (the only one this server has)."""
        short_string(version, "the model version in the path")
        if version != model.version:
            served = f"it serves {model.version}" if model.version else "it has no versions"
            raise ApiError(404, bounded(f"model {model_name} has no version {version!r}; {served}"))

    server = dumps(open_inference.server_metadata(inference_server.__version__))

    @routes.get("/")
    def index() -> Response:
        """The seed's health check: plain ``OK``."""
        return Response("OK", mimetype="text/plain")

    @routes.get("/healthz")
    def healthz() -> Response:
        """Liveness: 200 while the process can answer at all."""
        return json_response({"status": "ok"})

    @routes.get("/readyz")
    def readyz() -> Response:
        """Readiness: 200 when the model is loaded and no shutdown began, else 503."""
        return _when_ready({"status": "ready"}, "not ready: {reason}")

    @routes.get("/v1/models")
    def v1_models() -> Response:
        """The names of the served models."""
        return json_response({"models": [model_name]})

    @routes.get(v1_model)
    def v1_model_ready() -> Response:
        """200 ``ready: true`` with the model's version and digest when it serves, else 503."""
        return _when_ready(v1_metadata, f"Model with name {model_name} is not ready.")

    @routes.get("/v2")
    def v2_server() -> Response:
        """Server name, version and protocol extensions (none)."""
        return Response(server, mimetype=JSON_MIMETYPE)

    @routes.get("/v2/health/live")
    def v2_live() -> Response:
        """Server liveness: always 200 while answering."""
        return json_response({"live": True})

    @routes.get("/v2/health/ready")
    def v2_ready() -> Response:
        """Server readiness: 200 when the model serves, 503 before that or once draining."""
        return _when_ready({"ready": True}, "not ready: {reason}")

    @routes.get(v2_model)
    def v2_model_metadata() -> Response:
        """The model's real tensor schema: feature names, classes, shapes and datatypes."""
        return Response(metadata, mimetype=JSON_MIMETYPE)

    @routes.get(f"{v2_model}/ready")
    def v2_model_ready() -> Response:
        """Model readiness: 200 ``{"name", "ready": true}`` or 503."""
        return _when_ready(model_ready, f"model {model_name} is not ready")

    @routes.get(versioned)
    def v2_version_metadata(version: str) -> Response:
        """The served version's metadata (the model's); 404 for any other version."""
        served_version(version)
        return Response(metadata, mimetype=JSON_MIMETYPE)

    @routes.get(f"{versioned}/ready")
    def v2_version_ready(version: str) -> Response:
        """The served version's readiness; 404 for any other version."""
        served_version(version)
        return _when_ready(model_ready, f"model {model_name} is not ready")

    @routes.post(f"{versioned}/infer")
    def v2_version_infer(version: str) -> Response:
        """404: other versions only get here (the prediction core answers the served one)."""
        served_version(version)
        raise ApiError(404, f"model {model_name} is not served here")  # pragma: no cover

    @routes.get("/metrics")
    def metrics_exposition() -> Response:
        """Prometheus text exposition of every worker's metrics."""
        metrics: Metrics = current_app.extensions[METRICS_KEY]
        return Response(metrics.exposition_text(), content_type=CONTENT_TYPE_LATEST)

    @routes.get("/openapi.json")
    def openapi() -> Response:
        """The OpenAPI document built at start-up."""
        return Response(openapi_document, mimetype=JSON_MIMETYPE)

    return routes


def _http_error(error: HTTPException) -> BaseResponse:
    # Start from Werkzeug's own response: it carries Allow (405), WWW-Authenticate (401).
    response = error.get_response()
    message = error.description or error.name
    if isinstance(error, InternalServerError):
        message = INTERNAL_ERROR  # Flask wraps unhandled exceptions in this: text stays in logs
    response.set_data(error_bytes(message))
    response.mimetype = JSON_MIMETYPE
    return response


def _domain_error(error: Exception) -> Response:
    api_error = api_error_for(error)
    if api_error is None:  # pragma: no cover - only registered for mapped errors
        raise error
    response = Response(
        error_bytes(api_error.message, api_error.details),
        status=api_error.status,
        mimetype=JSON_MIMETYPE,
    )
    for name, value in api_error.headers:
        response.headers[name] = value
    return response


class InferenceFlask(Flask):
    """Flask, with the one log line of an unexpected exception naming the request id."""

    def log_exception(self, exc_info: Any) -> None:
        """Log an unhandled exception once, with method, path and request id."""
        self.logger.error(
            "unexpected error on %s %s (request_id=%s, client_request_id=%s)",
            request.method,
            request.path,
            g.get("request_id"),
            g.get("client_request_id"),
            exc_info=exc_info,
        )


def init_flask(app: Flask, metrics: Metrics, access_log: AccessLog | None) -> None:
    """Hook request ids, the access log, latency metrics and JSON errors into ``app``."""
    app.register_error_handler(HTTPException, _http_error)
    for kind in (ApiError, iris_model.IrisModelError):
        app.register_error_handler(kind, _domain_error)

    @app.before_request
    def start() -> None:
        g.started = time.perf_counter()
        g.request_id, g.client_request_id = request_ids(request.headers.get(REQUEST_ID_HEADER))

    @app.after_request
    def finish(response: Response) -> Response:
        rid: str | None = g.get("request_id")
        if rid is None:  # before_request did not run
            return response
        client_rid: str | None = g.get("client_request_id")
        response.headers[REQUEST_ID_HEADER] = client_rid or rid
        elapsed = time.perf_counter() - g.started
        rule = request.url_rule
        route = rule.rule if rule is not None else UNMATCHED_ROUTE
        metrics.observe_response(route, request.method, response.status_code, elapsed)
        if access_log is not None:
            access_log.request(
                request.method,
                request.path,
                response.status_code,
                elapsed,
                request_id=rid,
                remote_addr=request.remote_addr,
                client_request_id=client_rid,
            )
        return response
