"""Optional bearer-token authentication of the prediction routes.

Tokens come from ``INFERENCE_AUTH_TOKENS`` and/or the file ``INFERENCE_AUTH_TOKENS_FILE``
(e.g. a mounted Kubernetes Secret). With no token configured, authentication is off.
Health, metrics, metadata and OpenAPI routes stay open for probes and scrapers.
"""

from __future__ import annotations

import hmac

from inference_server.errors import ApiError

REALM = "inference-server"


def _challenge(error: str | None = None) -> tuple[tuple[str, str], ...]:
    value = f'Bearer realm="{REALM}"'
    if error:
        value += f', error="{error}"'
    return (("WWW-Authenticate", value),)


def token_matches(presented: bytes, tokens: tuple[bytes, ...]) -> bool:
    """Compare ``presented`` with every token in constant time (no early exit)."""
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(presented, token)
    return matched


class BearerAuth:
    """Checks ``Authorization: Bearer <token>`` against the configured tokens."""

    def __init__(self, tokens: tuple[bytes, ...]) -> None:
        """Accept any of ``tokens`` (none: every request is refused)."""
        self.tokens = tokens

    def check(self, header: str | None) -> None:
        """Raise 401 unless ``header`` is ``Bearer <one of the tokens>``.

        Raises:
            ApiError: 401 with a ``WWW-Authenticate`` challenge saying what is wrong.
        """
        if not header:
            raise ApiError(401, "missing bearer token", headers=_challenge())
        scheme, _, credentials = header.partition(" ")
        credentials = credentials.strip()
        if scheme.lower() != "bearer" or not credentials:
            raise ApiError(
                401,
                "Authorization must be 'Bearer <token>'",
                headers=_challenge("invalid_request"),
            )
        # WSGI headers are latin-1 strings: back to the bytes the client sent.
        if not token_matches(credentials.encode("latin-1", "replace"), self.tokens):
            raise ApiError(401, "invalid bearer token", headers=_challenge("invalid_token"))
