"""The service's own HTTP errors and the one error body, ``{"error": message}``.

Which status a library error gets is decided in one place, :func:`inference_server.errors.
api_error_for`; this module knows no library and only says what an answer to an error is.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

JSON_MIMETYPE = "application/json"
INTERNAL_ERROR = "internal server error"

#: Longest error message sent back: messages may quote client input (a key, a name), and a
#: 900 KB key once came back in a 900 KB error. Longer ones are cut, marked with "...".
MAX_MESSAGE_CHARS = 300


def bounded(message: str) -> str:
    """``message``, cut to :data:`MAX_MESSAGE_CHARS` characters."""
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    return message[: MAX_MESSAGE_CHARS - 3] + "..."


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


def error_bytes(message: str, details: list[str] | None = None) -> bytes:
    """The one error body of the service: ``{"error": message}`` plus optional ``details``.

    ``json.dumps`` (ASCII-escaped): a message quoting client text with lone surrogates
    still serialises.
    """
    body: dict[str, Any] = {"error": bounded(message)}
    if details:
        # Each detail quotes at most one value; their number is bounded by the protocol.
        body["details"] = [bounded(detail) for detail in details]
    return json.dumps(body, separators=(",", ":")).encode()
