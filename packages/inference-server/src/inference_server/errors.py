"""The service's errors and the one table that maps every error to an HTTP status.

Flask-free: the prediction core (:mod:`inference_server.service`) and the Flask error
handlers (:mod:`inference_server.app`) both answer through :func:`api_error_for`, so a domain
error gets the same status and body whichever front end met it.

- ``ApiError``: raised by the server's own checks (auth, content type, body, protocol rules),
  with a status, a client-facing message and optional headers (``WWW-Authenticate``, ``Allow``).
- Library errors: ``InvalidInputError`` -> 400, ``BatchTooLargeError`` -> 413,
  ``ModelLoadError`` -> 503 (with a fixed message: the reason is for the log).
- :class:`~inference_server.strictjson.InvalidJSONError` -> 400.
- Anything else is a bug: :func:`api_error_for` returns None and the caller logs it once and
  answers a fixed 500 message, never the exception text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import iris_model
from inference_server.strictjson import InvalidJSONError

JSON_MIMETYPE = "application/json"


class ApiError(Exception):
    """An error the server answers itself: status, client-facing message, extra headers."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        headers: Sequence[tuple[str, str]] = (),
        details: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = list(headers)
        self.details = details


INTERNAL_ERROR = "internal server error"

#: Domain errors by status, most specific first (BatchTooLargeError is an InvalidInputError).
_STATUS_OF: tuple[tuple[type[Exception], int], ...] = (
    (iris_model.BatchTooLargeError, 413),
    (iris_model.InvalidInputError, 400),
    (InvalidJSONError, 400),
)


def api_error_for(error: BaseException) -> ApiError | None:
    """The answer to ``error``, or None when it is a bug (log it, answer 500)."""
    if isinstance(error, ApiError):
        return error
    if isinstance(error, iris_model.ModelLoadError):
        return ApiError(503, "model is not available")
    for kind, status in _STATUS_OF:
        if isinstance(error, kind):
            return ApiError(status, str(error))
    return None


def error_bytes(message: str, details: list[str] | None = None) -> bytes:
    """The one error body of the service: ``{"error": message}`` plus optional ``details``.

    ``json.dumps`` (ASCII-escaped): a message quoting client text with lone surrogates
    still serialises.
    """
    body: dict[str, Any] = {"error": message}
    if details:
        body["details"] = details
    return json.dumps(body, separators=(",", ":")).encode()
