"""The shipped server with one speed trick turned off: the bench's on/off rows.

``BENCH_OFF`` names the trick (see ``TRICKS``). The Gunicorn side of each trick is turned off
in ``tricks_off_conf.py``; the app side here, by replacing one function of the shipped code
before the app is built, so each off row differs from ``server`` in that trick alone.
"""

from __future__ import annotations

import os
from typing import Any

from gunicorn.http import wsgi  # type: ignore[import-untyped,unused-ignore]

from inference_server.http.worker import FairGeventWorker

#: Each trick and what its off row runs instead.
TRICKS = {
    "fair": "Gunicorn's stock gevent worker (no yield after each answer)",
    "coalescing": "the fair worker with Gunicorn's Response (head and body in two writes)",
    "mallopt": "glibc's adaptive mmap threshold (no mallopt in the master)",
    "proof": "every JSON body decoded by the strict stdlib decoder (no orjson proof)",
    "number_rows": "JSON rows handed to the library as lists (no float matrix from the outline)",
    "simdjson": "plain batches through the general JSON path (no simdjson matrix)",
}


class TwoWritesWorker(FairGeventWorker):  # type: ignore[misc,unused-ignore]
    """The fair worker answering with Gunicorn's own Response: head and body in two writes."""

    response_class = wsgi.Response


def _rows_as_sent(rows: Any, *_args: Any) -> Any:
    return rows


def create() -> Any:
    """The shipped ``create_app()`` with the app-side trick named by ``BENCH_OFF`` off."""
    from inference_server import create_app  # noqa: PLC0415
    from inference_server.http import strictjson  # noqa: PLC0415
    from inference_server.protocols import kserve_v1, open_inference, seed  # noqa: PLC0415

    off = os.environ["BENCH_OFF"]
    if off not in TRICKS:
        raise SystemExit(f"BENCH_OFF={off!r}: expected one of {', '.join(TRICKS)}")
    if off == "proof":
        strictjson.decode_if_proven = lambda _data: None
    elif off == "number_rows":
        for module in (seed, kserve_v1, open_inference):
            module.number_rows = _rows_as_sent  # type: ignore[attr-defined]
    elif off == "simdjson":
        for module in (seed, kserve_v1):
            module.plain_batch = lambda *_args, **_kwargs: None  # type: ignore[attr-defined]
    return create_app()
