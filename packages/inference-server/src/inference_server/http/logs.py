"""One JSON access-log line per request, and the request id.

The line holds a UTC timestamp, method, path, status, latency, request id and client
address; never the body or headers other than X-Request-ID. The request id is always the
server's own (a client could otherwise reuse another request's id and forge correlation);
a well-formed incoming ``X-Request-ID`` is logged beside it as ``client_request_id`` and
echoed on the response, else the server's id is. The pipeline
(:mod:`inference_server.http.pipeline`) writes one line per request, whatever the route, and
so does Gunicorn's answer to a request it rejects
(:func:`inference_server.http.gunicorn.write_json_error`).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time

import orjson

ACCESS_LOGGER = "inference_server.access"
REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}").fullmatch


def request_ids(incoming: str | None) -> tuple[str, str | None]:
    """A fresh server id, and ``incoming`` (an X-Request-ID header) when well-formed."""
    client = incoming if incoming and _VALID_REQUEST_ID(incoming) else None
    return os.urandom(16).hex(), client


class _Clock:
    """UTC timestamps (RFC 3339, milliseconds); the part up to the second is cached."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def now(self) -> str:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._prefix}.{int((now - second) * 1000):03d}Z"


def _access_logger() -> logging.Logger:
    logger = logging.getLogger(ACCESS_LOGGER)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


def _fileno(stream: object) -> int | None:
    try:
        fileno = stream.fileno()  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return None
    return fileno if isinstance(fileno, int) else None


class AccessLog:
    """Writes the access-log line through the ``inference_server.access`` logger.

    While that logger is as this module set it up (its one stdout handler, no filters), the
    line is written with a single ``os.write`` of ``orjson.dumps(..., OPT_APPEND_NEWLINE)``,
    skipping ``Logger.info``'s record, lock, format and flush; a line under PIPE_BUF is atomic
    on a pipe. Any other set-up (a handler or filter added, e.g. by
    pytest's caplog or a logging config) gets the ordinary ``Logger.info`` call, and the
    logger's level is honoured either way.
    """

    def __init__(self) -> None:
        self.logger = _access_logger()
        self._handlers = list(self.logger.handlers)
        handler = self._handlers[0] if len(self._handlers) == 1 else None
        self._fd: int | None = None
        self._clock = _Clock()
        if (
            isinstance(handler, logging.StreamHandler)
            and type(handler) is logging.StreamHandler  # not a subclass: no custom emit()
            and handler.level == logging.NOTSET
            and not handler.filters
        ):
            self._fd = _fileno(handler.stream)

    def request(
        self,
        method: str | None,
        path: str | None,
        status: int,
        seconds: float | None,
        *,
        request_id: str,
        remote_addr: str | None,
        client_request_id: str | None = None,
        rejected: str | None = None,
    ) -> None:
        """Log one answered request at INFO.

        ``rejected``: why the HTTP layer refused a request it could not hand to the app (a
        bounded excerpt; its method and path are then None, as may be its latency).
        """
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return
        line: dict[str, object] = {
            "time": self._clock.now(),
            "method": method,
            "path": path,
            "status": status,
            "latency_ms": None if seconds is None else round(seconds * 1000, 3),
            "request_id": request_id,
            "client_request_id": client_request_id,
            "remote_addr": remote_addr,
        }
        if rejected is not None:
            line["rejected"] = rejected
        if self._fd is not None and logger.handlers == self._handlers and not logger.filters:
            os.write(self._fd, orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
        else:
            logger.info(orjson.dumps(line).decode())
