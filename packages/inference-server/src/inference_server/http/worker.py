"""Gunicorn's gevent worker, made fair between keep-alive connections, writing once per answer.

A greenlet that has written its answer reads the connection's next request at once, and
gevent only switches greenlets when a socket call would block. When the client's next
request is already there (a fast client on another core), the same connection is served
again and again while the requests of the worker's other connections wait in their socket
buffers: tens of milliseconds of tail latency with most requests answered in well under
one. Yielding to the event loop after each answer puts the connection back in line behind
every connection that is ready, so they are served in turn. ``bench/trace_worker.py``
shows the run lengths of one connection before and after; the bench's ``server_off_fair``
row measures the difference.

Gunicorn writes an answer's status line and headers, then its body, in two socket writes.
:class:`CoalescingResponse` holds the head back and sends it with the first body bytes: one
send() per answer of a single body instead of two (answers in several pieces or chunked keep
Gunicorn's framing; only the head moves); the bench's ``server_off_coalescing`` row measures it.
Both replace private Gunicorn internals (``wsgi.Response``, ``Response._emit_body``):
``tests/test_worker.py`` fails when a Gunicorn upgrade changes what they rely on.
"""

from __future__ import annotations

from typing import Any

import gevent  # type: ignore[import-untyped,unused-ignore]
from gunicorn import util  # type: ignore[import-untyped,unused-ignore]
from gunicorn.http import wsgi  # type: ignore[import-untyped,unused-ignore]
from gunicorn.workers.ggevent import GeventWorker  # type: ignore[import-untyped,unused-ignore]

# A timer, not gevent.sleep(0): a zero sleep is a callback run before the loop next polls,
# so the greenlet would resume ahead of sockets that became ready meanwhile. Any positive
# timeout makes the loop poll first; libev rounds it to the loop's clock.
_YIELD_SECONDS = 1e-6
#: Answers after which the connection is closed (see ``CoalescingResponse.start_response``).
_CLOSING_STATUSES = frozenset({408, 413})


class CoalescingResponse(wsgi.Response):  # type: ignore[misc,unused-ignore]
    """Gunicorn's response, with the head sent together with the first body bytes.

    ``headers_sent`` becomes true only once the head is on the wire, so Gunicorn's error
    handling (which answers an error only while nothing was sent) is unchanged.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """As Gunicorn's ``Response``."""
        super().__init__(*args, **kwargs)
        self._head: bytes | None = None

    def start_response(self, status: str, headers: Any, exc_info: Any = None) -> Any:
        """As Gunicorn's; then close after a 408 or 413, and say so (``Connection: close``).

        Those answers leave the connection mid-body (a body refused unread, or not received
        in time): no next request can be read from it. Gunicorn would say keep-alive, then
        either close anyway or wait on the rest of the body.
        """
        write = super().start_response(status, headers, exc_info)
        if self.status_code in _CLOSING_STATUSES:
            self.force_close()
        return write

    def send_headers(self) -> None:
        """Build the head (as Gunicorn does) and keep it for the first write."""
        if self.headers_sent or self._head is not None:
            return
        lines = self.default_headers()
        lines.extend([f"{name}: {value}\r\n" for name, value in self.headers])
        self._head = ("{}\r\n".format("".join(lines))).encode("latin-1")

    def _emit_body(self, data: bytes) -> None:
        head = self._take_head()
        if head is not None and not self.chunked:
            util.write(self.sock, head + data)
            return
        if head is not None:
            util.write(self.sock, head)
        util.write(self.sock, data, self.chunked)

    def _take_head(self) -> bytes | None:
        head, self._head = self._head, None
        if head is not None:
            self.headers_sent = True
        return head

    def can_sendfile(self) -> bool:
        """Never: sendfile() writes the head itself (no answer here is a file)."""
        return False

    def close(self) -> None:
        """Send a head still held back (an answer without body bytes), then finish."""
        self.send_headers()
        head = self._take_head()
        if head is not None:
            util.write(self.sock, head)
        super().close()


class FairGeventWorker(GeventWorker):  # type: ignore[misc,unused-ignore]
    """The ``gevent`` worker that yields to the event loop after every request."""

    #: What Gunicorn builds each answer with (the bench's off row sets Gunicorn's own).
    response_class: type = CoalescingResponse

    def init_process(self) -> None:
        """Answer with :attr:`response_class` (Gunicorn's ``create`` builds the response)."""
        wsgi.Response = self.response_class
        super().init_process()

    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> bool:
        """Answer one request, then let every other ready connection go first."""
        keep_going: bool = super().handle_request(listener_name, req, sock, addr)
        gevent.sleep(_YIELD_SECONDS)
        return keep_going
