"""Gunicorn's gevent worker, made fair between keep-alive connections.

A greenlet that has written its answer reads the connection's next request at once, and
gevent only switches greenlets when a socket call would block. When the client's next
request is already there (a fast client on another core), the same connection is served
again and again while the requests of the worker's other connections wait in their socket
buffers: tens of milliseconds of tail latency with most requests answered in well under
one. Yielding to the event loop after each answer puts the connection back in line behind
every connection that is ready, so they are served in turn. ``bench/trace_worker.py``
shows the run lengths of one connection before and after.
"""

from __future__ import annotations

from typing import Any

import gevent  # type: ignore[import-untyped,unused-ignore]
from gunicorn.workers.ggevent import GeventWorker  # type: ignore[import-untyped,unused-ignore]

# A timer, not gevent.sleep(0): a zero sleep is a callback run before the loop next polls,
# so the greenlet would resume ahead of sockets that became ready meanwhile. Any positive
# timeout makes the loop poll first; libev rounds it to the loop's clock.
_YIELD_SECONDS = 1e-6


class FairGeventWorker(GeventWorker):  # type: ignore[misc,unused-ignore]
    """The ``gevent`` worker that yields to the event loop after every request."""

    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> bool:
        """Answer one request, then let every other ready connection go first."""
        keep_going: bool = super().handle_request(listener_name, req, sock, addr)
        gevent.sleep(_YIELD_SECONDS)
        return keep_going
