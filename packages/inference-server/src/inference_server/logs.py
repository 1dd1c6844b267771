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


def _access_logger() -> logging.Logger:
    logger = logging.getLogger(ACCESS_LOGGER)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


def _start() -> None:
    g.started = time.perf_counter()
    incoming = request.headers.get(REQUEST_ID_HEADER)
    g.request_id = incoming if incoming and _VALID_REQUEST_ID(incoming) else os.urandom(16).hex()


def init_request_logging(app: Flask, *, log_requests: bool) -> None:
    """Stamp each request with a start time and id; log one line per request if enabled."""
    app.before_request(_start)
    logger = _access_logger()

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
            logger.info(orjson.dumps(line).decode())
        return response

    app.after_request(finish)
