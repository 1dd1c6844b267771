"""Optional bearer-token authentication of the prediction routes.

Tokens come from ``INFERENCE_AUTH_TOKENS`` and/or the file ``INFERENCE_AUTH_TOKENS_FILE``
(e.g. a mounted Kubernetes Secret). With no token configured, authentication is off.
Health, metrics, metadata and OpenAPI routes stay open for probes and scrapers.

The token file is re-read when it changes, so a rotated Secret takes effect without a
restart: each worker stats it at most once per :data:`CHECK_INTERVAL` (on a request, never
per request) and reads it only when the stat differs. A file that later holds no token, or
cannot be read, fails closed: its old tokens are dropped (a Secret emptied to revoke access
must revoke it) and only the inline tokens, if any, still pass until the file holds one again.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from inference_server.http.errors import ApiError

logger = logging.getLogger("inference_server")

REALM = "inference-server"
#: Seconds between two stats of the token file in one worker.
CHECK_INTERVAL = 1.0

#: What tells a changed file apart: the kubelet swaps a symlink to a new file (new inode).
_Signature = tuple[int, ...]


def tokens(value: Any) -> tuple[bytes, ...]:
    """Bearer tokens separated by commas or whitespace (a list of them in overrides)."""
    if value is None:
        return ()
    items = value if isinstance(value, list | tuple) else [value]
    return tuple(
        token.encode() for item in items for token in re.split(r"[\s,]+", str(item)) if token
    )


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


def _signature(path: Path) -> _Signature:
    """Device, inode, size and mtime of ``path`` (symlinks followed); ``(errno,)`` on error."""
    try:
        stat = os.stat(path)
    except OSError as error:
        return (error.errno or -1,)
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


class TokenFile:
    """The tokens of ``INFERENCE_AUTH_TOKENS_FILE``, re-read when the file changes."""

    def __init__(
        self,
        path: Path,
        tokens: tuple[bytes, ...],
        *,
        signature: _Signature,
        interval: float = CHECK_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Start from ``tokens``, read from ``path`` when its stat was ``signature``."""
        self.path = path
        self.tokens = tokens
        self.interval = interval
        self._signature = signature
        self._clock = clock
        self._next_check = clock() + interval

    @classmethod
    def watch(cls, path: Path, tokens: Callable[[], tuple[bytes, ...]]) -> TokenFile:
        """Stat ``path``, then take its start-up ``tokens`` (stat first: no change is missed)."""
        signature = _signature(path)
        return cls(path, tokens(), signature=signature, interval=CHECK_INTERVAL)

    def current(self) -> tuple[bytes, ...]:
        """The file's tokens now: a stat at most once per interval, a read only on change."""
        now = self._clock()
        if now < self._next_check:
            return self.tokens
        self._next_check = now + self.interval
        signature = _signature(self.path)
        if signature != self._signature:
            self._signature = signature
            self.tokens = self._read()
        return self.tokens

    def _read(self) -> tuple[bytes, ...]:
        # Logged once per change of the file, never the tokens themselves.
        try:
            found = tokens(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as error:
            logger.error(
                "cannot read INFERENCE_AUTH_TOKENS_FILE %s (%s): its tokens are refused until it"
                " can be read and holds one",
                self.path,
                getattr(error, "strerror", None) or type(error).__name__,
            )
            return ()
        if not found:
            logger.error(
                "INFERENCE_AUTH_TOKENS_FILE %s holds no token now: its tokens are refused until"
                " it holds one",
                self.path,
            )
        else:
            logger.info(
                "auth tokens reloaded from %s: %d token(s) in the file", self.path, len(found)
            )
        return found


class BearerAuth:
    """Checks ``Authorization: Bearer <token>`` against the configured tokens."""

    def __init__(self, tokens: tuple[bytes, ...], token_file: TokenFile | None = None) -> None:
        """Accept any of ``tokens`` or of ``token_file``'s current ones (none: refuse all)."""
        self.inline = tokens
        self.token_file = token_file
        self._file_tokens: tuple[bytes, ...] = ()
        self.tokens = tokens
        self._refresh()

    def _refresh(self) -> None:
        if self.token_file is None:
            return
        current = self.token_file.current()
        if current is not self._file_tokens:
            self._file_tokens = current
            self.tokens = self.inline + current

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
        self._refresh()
        # WSGI headers are latin-1 strings: back to the bytes the client sent.
        if not token_matches(credentials.encode("latin-1", "replace"), self.tokens):
            raise ApiError(401, "invalid bearer token", headers=_challenge("invalid_token"))
