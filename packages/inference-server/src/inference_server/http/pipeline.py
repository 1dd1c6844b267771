"""The one request path: every route, prediction or not, through one WSGI wrapper.

:class:`Pipeline` serves the :class:`Route` objects registered with it (each protocol module
registers its own, see :mod:`inference_server.protocols`) and does, once per request and in
this order: request id, route match (404, or 405 with ``Allow``), bearer auth when the route
needs it, Content-Type and the bounded body read when the route takes a body, the route's
handler, the answer to any error, status line and headers, latency and error metrics, one
access-log line. No framework runs per request. Errors become answers through the
``error_for`` table it is given (:func:`inference_server.errors.api_error_for`); an
unexpected exception is logged once with the request id and answered
``500 {"error": "internal server error"}``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Protocol

from inference_server.http.bodies import BodyReader, check_content_type
from inference_server.http.errors import INTERNAL_ERROR, JSON_MIMETYPE, ApiError, error_bytes
from inference_server.http.logs import REQUEST_ID_HEADER, AccessLog, request_ids
from inference_server.http.strictjson import dumps

logger = logging.getLogger("inference_server")

WSGIEnviron = dict[str, Any]
StartResponse = Callable[..., Any]

#: Headers of every JSON answer.
JSON_HEADERS: tuple[tuple[str, str], ...] = (("Content-Type", JSON_MIMETYPE),)
#: Route label of requests no route matched (404s), so metric labels stay bounded.
UNMATCHED_ROUTE = "<unmatched>"
#: "200 OK"-style status lines (the WSGI server writes them as given).
_STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}
_NOT_FOUND = (
    "The requested URL was not found on the server. If you entered the URL manually please"
    " check your spelling and try again."
)
_NOT_ALLOWED = "The method is not allowed for the requested URL."
#: ``{name}`` in a route's path matches one path segment.
_VARIABLE = re.compile(r"\{(\w+)\}")


class Headers(Protocol):
    """Read access to request headers by case-insensitive name (e.g. ``"Content-Type"``)."""

    def get(self, name: str) -> str | None:
        """The header's value, or None when absent."""


class EnvironHeaders:
    """:class:`Headers` over a WSGI environ, without copying it."""

    __slots__ = ("_environ",)

    def __init__(self, environ: Mapping[str, Any]) -> None:
        """Read headers from ``environ``."""
        self._environ = environ

    def get(self, name: str) -> str | None:
        """The header's value, or None when absent."""
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        value = self._environ.get(key)
        return value if isinstance(value, str) else None


@dataclass(slots=True)
class Answer:
    """An HTTP answer: status, headers (Content-Length and X-Request-ID come later), body."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = field(default=JSON_HEADERS)


Handler = Callable[["Request"], Answer]


def json_answer(document: Any, status: int = 200) -> Answer:
    """A JSON answer encoded with :func:`~inference_server.http.strictjson.dumps`."""
    return Answer(status, dumps(document))


def constant(document: Any, content_type: str = JSON_MIMETYPE) -> Handler:
    """A handler answering ``document`` (JSON, or bytes as they are) whatever the request."""
    body = document if isinstance(document, bytes) else dumps(document)
    headers = JSON_HEADERS if content_type == JSON_MIMETYPE else (("Content-Type", content_type),)
    answer = Answer(200, body, headers)
    return lambda _request: answer


def error_answer(error: ApiError) -> Answer:
    """The JSON answer to ``error``: its status, its headers, ``{"error": ...}``."""
    return Answer(
        error.status, error_bytes(error.message, error.details), (*JSON_HEADERS, *error.headers)
    )


@dataclass(frozen=True, slots=True)
class Request:
    """What a route's handler gets: headers, the body (empty for GET) and path variables."""

    headers: Headers
    body: bytes = b""
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Route:
    """One method on one path.

    Attributes:
        path: The URL path; ``{name}`` matches one segment (``Request.params["name"]``). It
            is also the route's metrics label and its OpenAPI path.
        method: ``GET`` (which also answers ``HEAD``) or ``POST``.
        handler: Makes the answer; raises :class:`ApiError` or a mapped error for failures.
        auth: Needs a bearer token when authentication is on.
        media_types: The Content-Types of the body it reads (None: it reads no body).
    """

    path: str
    method: str
    handler: Handler
    auth: bool = False
    media_types: frozenset[str] | None = None


class Observer(Protocol):
    """Where the pipeline reports each answered request (the Prometheus metrics)."""

    def observe_response(self, route: str, method: str, status: int, seconds: float) -> None:
        """Record one answered request."""


ErrorTable = Callable[[BaseException], ApiError | None]


def _api_errors_only(error: BaseException) -> ApiError | None:
    return error if isinstance(error, ApiError) else None


class Pipeline:
    """The WSGI app of every route: routing, auth, body, handler, errors, metrics, log."""

    def __init__(
        self,
        routes: Sequence[Route],
        *,
        body_reader: BodyReader,
        observer: Observer,
        access_log: AccessLog | None,
        auth: Callable[[str | None], None] | None = None,
        error_for: ErrorTable = _api_errors_only,
    ) -> None:
        """Serve ``routes``; ``auth`` (None: off) checks an Authorization header or raises."""
        self.body_reader = body_reader
        self.observer = observer
        self.access_log = access_log
        self.auth = auth
        self.error_for = error_for
        self._exact: dict[str, dict[str, Route]] = {}
        self._patterns: list[tuple[re.Pattern[str], str, dict[str, Route]]] = []
        for route in routes:
            self.add(route)

    def add(self, route: Route) -> None:
        """Register ``route``; a path is served by one route per method."""
        methods = self._methods(route.path)
        if route.method in methods:
            raise ValueError(f"{route.method} {route.path} is registered twice")
        methods[route.method] = route

    @property
    def routes(self) -> list[Route]:
        """Every registered route."""
        tables = [*self._exact.values(), *(methods for _, _, methods in self._patterns)]
        return [route for methods in tables for route in methods.values()]

    def _methods(self, path: str) -> dict[str, Route]:
        if not _VARIABLE.search(path):
            return self._exact.setdefault(path, {})
        for _pattern, template, methods in self._patterns:
            if template == path:
                return methods
        regex = re.compile(
            "".join(
                f"(?P<{part}>[^/]+)" if n % 2 else re.escape(part)
                for n, part in enumerate(_VARIABLE.split(path))
            )
        )
        methods = {}
        self._patterns.append((regex, path, methods))
        return methods

    def match(self, path: str) -> tuple[str, dict[str, Route], dict[str, str]]:
        """The route label, the routes by method and the path variables of ``path``.

        Raises:
            ApiError: 404 when no route has this path.
        """
        methods = self._exact.get(path)
        if methods is not None:
            return path, methods, {}
        for regex, template, found in self._patterns:
            matched = regex.fullmatch(path)
            if matched is not None:
                return template, found, matched.groupdict()
        raise ApiError(404, _NOT_FOUND)

    def answer(self, environ: Mapping[str, Any], route: Route, params: Mapping[str, str]) -> Answer:
        """Auth, the body when the route takes one, then the handler (raises on failure)."""
        headers = EnvironHeaders(environ)
        if route.auth and self.auth is not None:
            self.auth(headers.get("Authorization"))
        if route.media_types is None:
            return route.handler(Request(headers, b"", params))
        check_content_type(environ.get("CONTENT_TYPE", ""), route.media_types)
        return route.handler(Request(headers, self.body_reader.read(environ), params))

    def __call__(self, environ: WSGIEnviron, start_response: StartResponse) -> Iterable[bytes]:
        """Serve one WSGI request."""
        started = time.perf_counter()
        method = environ.get("REQUEST_METHOD", "")
        path = environ.get("PATH_INFO", "")
        rid, client_rid = request_ids(environ.get("HTTP_X_REQUEST_ID"))
        label = UNMATCHED_ROUTE
        try:
            label, methods, params = self.match(path)
            route = methods.get("GET" if method == "HEAD" else method)
            if route is None:
                allowed = sorted({*methods, *(("HEAD",) if "GET" in methods else ())})
                raise ApiError(405, _NOT_ALLOWED, headers=(("Allow", ", ".join(allowed)),))
            answer = self.answer(environ, route, params)
        except Exception as error:
            # Nothing in this frame may keep the exception past this block: its traceback
            # holds this frame, and such a cycle would keep whatever the failed request
            # held (a large body's chunks) until the cyclic GC ran.
            answer = self._error_answer(error, method, path, rid, client_rid)
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
        self.observer.observe_response(label, method, status, elapsed)
        if self.access_log is not None:
            self.access_log.request(
                method,
                path,
                status,
                elapsed,
                request_id=rid,
                remote_addr=environ.get("REMOTE_ADDR"),
                client_request_id=client_rid,
            )
        return [b""] if method == "HEAD" else [answer.body]

    def _error_answer(
        self, error: Exception, method: str, path: str, rid: str, client_rid: str | None
    ) -> Answer:
        """The JSON answer to ``error``; an unexpected one is logged and answered 500."""
        api_error = self.error_for(error)
        if api_error is None:
            logger.exception(
                "unexpected error on %s %s (request_id=%s, client_request_id=%s)",
                method,
                path,
                rid,
                client_rid,
            )
            api_error = ApiError(500, INTERNAL_ERROR)
        return error_answer(api_error)
