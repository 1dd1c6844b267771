"""One JSON access-log line per request, and the request id.

The line holds method, path, status, latency and request id; never the body or headers
other than X-Request-ID. The id is taken from a well-formed incoming ``X-Request-ID``
or made up, and echoed on the response. ``g.started`` also feeds the latency metrics.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time

import orjson
from flask import Flask, Response, g, request

ACCESS_LOGGER = "inference_server.access"
REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}").fullmatch
#: Whether an incoming X-Request-ID is kept (else a fresh id is made up).
valid_request_id = _VALID_REQUEST_ID


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
    line is written with a single ``os.write`` of ``orjson.dumps(..., OPT_APPEND_NEWLINE)``:
    0.5 us instead of 6.6 us through ``Logger.info`` (record, lock, format, flush), and a line
    under PIPE_BUF is atomic on a pipe. Any other set-up (a handler or filter added, e.g. by
    pytest's caplog or a logging config) gets the ordinary ``Logger.info`` call, and the
    logger's level is honoured either way.
    """

    def __init__(self) -> None:
        self.logger = _access_logger()
        self._handlers = list(self.logger.handlers)
        handler = self._handlers[0] if len(self._handlers) == 1 else None
        self._fd: int | None = None
        if (
            isinstance(handler, logging.StreamHandler)
            and type(handler) is logging.StreamHandler  # not a subclass: no custom emit()
            and handler.level == logging.NOTSET
            and not handler.filters
        ):
            self._fd = _fileno(handler.stream)

    def write(self, line: dict[str, object]) -> None:
        """Log one access line (a JSON object) at INFO."""
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return
        if self._fd is not None and logger.handlers == self._handlers and not logger.filters:
            os.write(self._fd, orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
        else:
            logger.info(orjson.dumps(line).decode())


def _start() -> None:
    g.started = time.perf_counter()
    incoming = request.headers.get(REQUEST_ID_HEADER)
    g.request_id = incoming if incoming and _VALID_REQUEST_ID(incoming) else os.urandom(16).hex()


def init_request_logging(app: Flask, *, log_requests: bool) -> AccessLog | None:
    """Stamp each request with a start time and id; log one line per request if enabled.

    Returns:
        The access log the app writes to, or None when request logging is off.
    """
    app.before_request(_start)
    access_log = AccessLog()

    def finish(response: Response) -> Response:
        request_id = g.get("request_id")
        if request_id is None:  # before_request did not run
            return response
        response.headers[REQUEST_ID_HEADER] = request_id
        if log_requests:
            line = {
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "latency_ms": round((time.perf_counter() - g.started) * 1000, 3),
                "request_id": request_id,
                "remote_addr": request.remote_addr,
            }
            access_log.write(line)
        return response

    app.after_request(finish)
    return access_log if log_requests else None
