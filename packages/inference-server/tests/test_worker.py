"""The worker's response: one socket write per answer, and Gunicorn's framing unchanged."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from gunicorn.config import Config
from gunicorn.http import wsgi

from inference_server.http.worker import CoalescingResponse


class RecordingSocket:
    """Records each sendall() call."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        """Record one write."""
        self.writes.append(bytes(data))


def _request(method: str = "POST", version: tuple[int, int] = (1, 1)) -> Any:
    return SimpleNamespace(
        version=version, method=method, should_close=lambda: False, headers=[], uri="/predict"
    )


def _answer(cls: type, headers: list[tuple[str, str]], *bodies: bytes, **req: Any) -> list[bytes]:
    sock = RecordingSocket()
    response = cls(_request(**req), sock, Config())
    response.start_response("200 OK", headers)
    for body in bodies:
        response.write(body)
    response.close()
    return sock.writes


def _without_date(data: bytes) -> bytes:
    return b"\r\n".join(line for line in data.split(b"\r\n") if not line.startswith(b"Date: "))


def test_head_and_body_go_out_in_one_write() -> None:
    headers = [("Content-Type", "application/json"), ("Content-Length", "2")]
    writes = _answer(CoalescingResponse, headers, b"{}")
    assert len(writes) == 1
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert writes[0].endswith(b"\r\n\r\n{}")
    assert _without_date(writes[0]) == _without_date(
        b"".join(_answer(wsgi.Response, headers, b"{}"))
    )


@pytest.mark.parametrize(
    ("headers", "bodies", "request_args"),
    [
        ([("Content-Length", "0")], (), {}),  # no body: the head goes out on close
        ([("Content-Length", "6")], (b"abc", b"def"), {}),  # later writes unchanged
        ([], (b"abc", b"def"), {}),  # no length: chunked, as Gunicorn frames it
        ([("Content-Length", "2")], (b"{}",), {"method": "HEAD"}),  # no body on HEAD
        ([("Content-Length", "2")], (b"{}",), {"version": (1, 0)}),
    ],
)
def test_bytes_on_the_wire_are_gunicorns(
    headers: list[tuple[str, str]], bodies: tuple[bytes, ...], request_args: dict[str, Any]
) -> None:
    """Whatever the answer's shape, the same bytes as Gunicorn's own response, in order."""
    ours = b"".join(_answer(CoalescingResponse, headers, *bodies, **request_args))
    theirs = b"".join(_answer(wsgi.Response, headers, *bodies, **request_args))
    assert _without_date(ours) == _without_date(theirs)
    assert ours.startswith(b"HTTP/1.")


def test_headers_sent_only_once_they_are_on_the_wire() -> None:
    """Gunicorn answers an app's late error only while no head went out."""
    sock = RecordingSocket()
    response = CoalescingResponse(_request(), sock, Config())
    response.start_response("200 OK", [("Content-Length", "2")])
    response.send_headers()
    assert not response.headers_sent
    assert sock.writes == []
    response.write(b"{}")
    assert response.headers_sent


@pytest.mark.parametrize(
    ("status", "closes"), [(408, True), (413, True), (400, False), (200, False)]
)
def test_408_and_413_close_the_connection_and_say_so(status: int, closes: bool) -> None:
    """After a body refused unread or not received in time, ``Connection: close``."""
    sock = RecordingSocket()
    response = CoalescingResponse(_request(), sock, Config())
    response.start_response(f"{status} X", [("Content-Length", "2")])
    response.write(b"{}")
    response.close()
    assert response.should_close() is closes
    connection = b"Connection: close" if closes else b"Connection: keep-alive"
    assert connection in sock.writes[0]


def test_the_gunicorn_internals_patched_here_are_still_there() -> None:
    """A Gunicorn upgrade that renames or reshapes what is patched fails here, not in prod.

    The worker replaces ``gunicorn.http.wsgi.Response`` (and overrides its private
    ``_emit_body``, ``send_headers`` and ``close``, reading ``headers_sent``, ``chunked`` and
    ``default_headers()``, calling ``force_close``); the config replaces
    ``gunicorn.util.write_error`` and ``gunicorn.http.message.ChunkedReader`` (a subclass
    overriding ``read_into`` and ``parse_chunk_size``).
    """
    import inspect  # noqa: PLC0415

    from gunicorn import util  # noqa: PLC0415
    from gunicorn.http import body, message  # noqa: PLC0415
    from gunicorn.workers.ggevent import GeventWorker  # noqa: PLC0415

    assert message.ChunkedReader.__name__ in {"ChunkedReader", "StrictChunkedReader"}
    for name in ("read_into", "parse_chunk_size"):
        assert list(inspect.signature(getattr(body.ChunkedReader, name)).parameters)[:2] == [
            "self",
            "unreader",
        ], name
    for name in (
        "_emit_body",
        "send_headers",
        "close",
        "default_headers",
        "can_sendfile",
        "force_close",
        "start_response",
    ):
        assert callable(getattr(wsgi.Response, name, None)), name
    assert list(inspect.signature(wsgi.Response._emit_body).parameters) == ["self", "data"]
    response = wsgi.Response(_request(), RecordingSocket(), Config())
    assert (response.headers_sent, response.chunked) == (False, False)
    assert list(inspect.signature(util.write_error).parameters) == [
        "sock",
        "status_int",
        "reason",
        "mesg",
    ]
    assert list(inspect.signature(GeventWorker.handle_request).parameters) == [
        "self",
        "listener_name",
        "req",
        "sock",
        "addr",
    ]
    # gunicorn.workers.base builds answers through wsgi.create, which looks Response up in
    # the module at call time: replacing the module attribute is what takes effect.
    assert "response_class = Response" in inspect.getsource(wsgi.create)
