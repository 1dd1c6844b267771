"""Optional bearer-token authentication of the prediction routes.

Tokens come from ``INFERENCE_AUTH_TOKENS`` and/or the file ``INFERENCE_AUTH_TOKENS_FILE``
(e.g. a mounted Kubernetes Secret). With no token configured, authentication is off.
Health, metrics, metadata and OpenAPI routes stay open for probes and scrapers.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from flask import current_app, request
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized

from inference_server.config import SETTINGS_KEY, Settings

P = ParamSpec("P")
R = TypeVar("R")

REALM = "inference-server"


def _challenge(error: str | None = None) -> WWWAuthenticate:
    parameters: dict[str, str | None] = {"realm": REALM}
    if error:
        parameters["error"] = error
    return WWWAuthenticate("bearer", parameters)


def token_matches(presented: bytes, tokens: tuple[bytes, ...]) -> bool:
    """Compare ``presented`` with every token in constant time (no early exit)."""
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(presented, token)
    return matched


def check_authorization(header: str | None, tokens: tuple[bytes, ...]) -> None:
    """Raise 401 unless ``header`` is ``Bearer <one of tokens>``.

    Raises:
        Unauthorized: Missing, malformed or unknown credentials (with WWW-Authenticate).
    """
    if not header:
        raise Unauthorized("missing bearer token", www_authenticate=_challenge())
    scheme, _, credentials = header.partition(" ")
    credentials = credentials.strip()
    if scheme.lower() != "bearer" or not credentials:
        raise Unauthorized(
            "Authorization must be 'Bearer <token>'", www_authenticate=_challenge("invalid_request")
        )
    if not token_matches(credentials.encode("utf-8", "surrogateescape"), tokens):
        raise Unauthorized("invalid bearer token", www_authenticate=_challenge("invalid_token"))


def requires_auth(view: Callable[P, R]) -> Callable[P, R]:
    """Decorate a view so that it needs a bearer token when authentication is enabled."""

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        settings: Settings = current_app.extensions[SETTINGS_KEY]
        if settings.auth_tokens:
            check_authorization(request.headers.get("Authorization"), settings.auth_tokens)
        return view(*args, **kwargs)

    return wrapper
