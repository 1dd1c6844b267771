"""One place that turns every error into ``{"error": "<message>"}`` with the right status.

- Werkzeug's HTTP errors (404, 405, 413, 415, 401, ...) keep their status and headers
  (``Allow``, ``WWW-Authenticate``) because the response starts from ``e.get_response()``.
- Library errors: ``InvalidInputError`` -> 400, ``BatchTooLargeError`` -> 413,
  ``ModelLoadError`` -> 503. Their messages are written for clients (row and column).
- Anything else is a bug: Flask logs it and the client gets a fixed 500 message, never the
  exception text. There is deliberately no handler for ``Exception``.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.wrappers import Response as BaseResponse

import iris_model
from inference_server.jsonio import JSON_MIMETYPE, error_bytes


class ApiError(HTTPException):
    """An HTTP error raised by the server's own validation, with optional ``details``."""

    def __init__(self, code: int, message: str, details: list[str] | None = None) -> None:
        super().__init__(description=message)
        self.code = code
        self.details = details


def _as_json_error(
    response: BaseResponse, status: int, message: str, details: list[str] | None = None
) -> BaseResponse:
    response.set_data(error_bytes(message, details))
    response.mimetype = JSON_MIMETYPE
    response.status_code = status
    return response


def error_response(status: int, message: str, details: list[str] | None = None) -> Response:
    """A JSON error response ``{"error": message[, "details": [...]]}``."""
    return Response(error_bytes(message, details), status=status, mimetype=JSON_MIMETYPE)


def _http_error(error: HTTPException) -> BaseResponse:
    status = error.code or 500
    message = error.description or error.name
    if isinstance(error, InternalServerError):
        # Flask wraps unhandled exceptions in this; their text never reaches the client.
        message = "internal server error"
    details = getattr(error, "details", None)
    # Start from Werkzeug's own response: it carries Allow (405), WWW-Authenticate (401).
    return _as_json_error(error.get_response(), status, message, details)


def _invalid_input(error: iris_model.InvalidInputError) -> Response:
    return error_response(400, str(error))


def _batch_too_large(error: iris_model.BatchTooLargeError) -> Response:
    return error_response(413, str(error))


def _model_unavailable(_error: iris_model.ModelLoadError) -> Response:
    return error_response(503, "model is not available")


def register_error_handlers(app: Flask) -> None:
    """Register the JSON error handlers on ``app``."""
    handlers: list[tuple[Any, Any]] = [
        (HTTPException, _http_error),
        (iris_model.BatchTooLargeError, _batch_too_large),
        (iris_model.InvalidInputError, _invalid_input),
        (iris_model.ModelLoadError, _model_unavailable),
    ]
    for exception, handler in handlers:
        app.register_error_handler(exception, handler)
