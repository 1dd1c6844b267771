"""The prediction core: every prediction request, errors included, in one place.

For each request on a prediction route :class:`PredictionService` does, once and in this
order: request id, method check, bearer auth, Content-Type, bounded body read, the
protocol's parse (strict JSON inside), the library's ``classify`` (which validates the rows
once), the protocol's render, metrics and the access-log line. It is plain WSGI, so no
framework runs per prediction; :class:`PredictionRoutes` puts it in front of the Flask app,
which keeps the other routes. Errors become answers through
:func:`~inference_server.errors.api_error_for`; an unexpected exception is logged once with
the request id and answered ``500 {"error": "internal server error"}``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

import iris_model
from inference_server.auth import BearerAuth
from inference_server.bodies import BodyReader, check_content_type
from inference_server.errors import INTERNAL_ERROR, ApiError, api_error_for, error_bytes
from inference_server.logs import REQUEST_ID_HEADER, AccessLog, request_ids
from inference_server.metrics import Metrics
from inference_server.protocols.base import (
    JSON_HEADERS,
    Answer,
    EnvironHeaders,
    Prediction,
    PredictionProtocol,
)

logger = logging.getLogger("inference_server")

WSGIEnviron = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[WSGIEnviron, StartResponse], Iterable[bytes]]

_ALLOW = (("Allow", "POST"),)
#: "200 OK"-style status lines (the WSGI server writes them as given).
_STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}


def error_answer(error: ApiError) -> Answer:
    """The JSON answer to ``error``: its status, its headers, ``{"error": ...}``."""
    return Answer(
        error.status, error_bytes(error.message, error.details), (*JSON_HEADERS, *error.headers)
    )


class PredictionService:
    """Answers prediction requests for one model with any :class:`PredictionProtocol`."""

    def __init__(
        self,
        model: iris_model.IrisModel,
        *,
        body_reader: BodyReader,
        metrics: Metrics,
        access_log: AccessLog | None,
        auth: BearerAuth | None = None,
    ) -> None:
        """Serve ``model``; ``auth`` None means prediction routes need no token."""
        self.model = model
        self.body_reader = body_reader
        self.metrics = metrics
        self.access_log = access_log
        self.auth = auth
        self._ok_latency: dict[str, Any] = {}

    def answer(self, protocol: PredictionProtocol[Any], environ: Mapping[str, Any]) -> Answer:
        """Auth, read, parse, classify and render one request (raises on any failure)."""
        if environ.get("REQUEST_METHOD") != "POST":
            raise ApiError(405, "The method is not allowed for the requested URL.", headers=_ALLOW)
        headers = EnvironHeaders(environ)
        if self.auth is not None:
            self.auth.check(headers.get("Authorization"))
        check_content_type(environ.get("CONTENT_TYPE", ""), protocol.media_types)
        call = protocol.parse(self.body_reader.read(environ), headers)
        prediction = Prediction.of(self.model, call.rows, probabilities=call.probabilities)
        answer = protocol.render(call, prediction)
        self.metrics.observe_predictions(prediction.index_array)
        return answer

    def __call__(
        self,
        protocol: PredictionProtocol[Any],
        environ: WSGIEnviron,
        start_response: StartResponse,
    ) -> Iterable[bytes]:
        """Serve one WSGI request on ``protocol``'s route."""
        started = time.perf_counter()
        method = environ.get("REQUEST_METHOD", "")
        rid, client_rid = request_ids(environ.get("HTTP_X_REQUEST_ID"))
        try:
            answer = self.answer(protocol, environ)
        except Exception as error:
            # Nothing in this frame may keep the exception past this block: its traceback
            # holds this frame, and such a cycle would keep whatever the failed request
            # held (a large body's chunks) until the cyclic GC ran.
            answer = self._error_answer(error, method, protocol.route, rid, client_rid)
        status = answer.status
        start_response(
            _STATUS_LINES[status],
            [
                *answer.headers,
                ("Content-Length", str(len(answer.body))),
                (REQUEST_ID_HEADER, client_rid or rid),
            ],
        )
        elapsed = time.perf_counter() - started
        self._observe(protocol.route, method, status, elapsed)
        if self.access_log is not None:
            self.access_log.request(
                method,
                environ.get("PATH_INFO", ""),
                status,
                elapsed,
                request_id=rid,
                remote_addr=environ.get("REMOTE_ADDR"),
                client_request_id=client_rid,
            )
        return [answer.body]

    @staticmethod
    def _error_answer(
        error: Exception, method: str, route: str, rid: str, client_rid: str | None
    ) -> Answer:
        """The JSON answer to ``error``; an unexpected one is logged and answered 500."""
        api_error = api_error_for(error)
        if api_error is None:
            logger.exception(
                "unexpected error on %s %s (request_id=%s, client_request_id=%s)",
                method,
                route,
                rid,
                client_rid,
            )
            api_error = ApiError(500, INTERNAL_ERROR)
        return error_answer(api_error)

    def _observe(self, route: str, method: str, status: int, seconds: float) -> None:
        if status == 200 and method == "POST":  # the common case: a cached child
            child = self._ok_latency.get(route)
            if child is None:
                child = self._ok_latency[route] = self.metrics.latency.labels(route, "POST", "200")
            child.observe(seconds)
        else:
            self.metrics.observe_response(route, method, status, seconds)


class PredictionRoutes:
    """WSGI app: prediction routes to the service, every other request to ``fallback``."""

    def __init__(
        self,
        fallback: WSGIApp,
        service: PredictionService,
        protocols: Sequence[PredictionProtocol[Any]],
    ) -> None:
        """Route each protocol's path to ``service``; ``fallback`` is the Flask app."""
        self.fallback = fallback
        self.service = service
        self.protocols = {protocol.route: protocol for protocol in protocols}

    def __call__(self, environ: WSGIEnviron, start_response: StartResponse) -> Iterable[bytes]:
        """Dispatch on the exact path."""
        protocol = self.protocols.get(environ.get("PATH_INFO", ""))
        if protocol is None:
            return self.fallback(environ, start_response)
        return self.service(protocol, environ, start_response)
