"""The one table that maps every error to an HTTP status.

The pipeline (:mod:`inference_server.http.pipeline`) answers every failed request through
:func:`api_error_for`, so an error gets the same status and body on every route.

- :class:`~inference_server.http.errors.ApiError`: raised by the server's own checks (auth,
  content type, body, protocol rules), with a status, a message and optional headers.
- Library errors: ``InvalidInputError`` -> 400, ``BatchTooLargeError`` -> 413,
  ``ModelLoadError`` -> 503 (with a fixed message: the reason is for the log).
- :class:`~inference_server.http.strictjson.InvalidJSONError` -> 400.
- Anything else is a bug: :func:`api_error_for` returns None and the pipeline logs it once
  and answers a fixed 500 message, never the exception text.
"""

from __future__ import annotations

import iris_model
from inference_server.http.errors import ApiError
from inference_server.http.strictjson import InvalidJSONError

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
