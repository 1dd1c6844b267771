"""CPU one worker spends on each worst-case body of about the body limit, in-process.

    python bench/heavy_bodies.py [--size BYTES] [--repeat 3]

Each body is built to be as expensive as possible per byte for one stage (decoding many
small objects, keys, strings or arrays; wide number arrays; deep nesting; a duplicate key
that forces the strict decoder) and sent to every prediction route by a direct WSGI call.
The table gives the best of ``--repeat`` process-CPU times, the status and the start of the
answer; a valid 10,000-row Open Inference body is the reference.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from inference_server.app import create_app

ROUTES = {"seed": "/predict", "v1": "/v1/models/iris:predict", "v2": "/v2/models/iris/infer"}


def fill(item: bytes, prefix: bytes, suffix: bytes, size: int) -> bytes:
    """``prefix`` + as many comma-separated ``item`` as fit in ``size`` bytes + ``suffix``."""
    count = (size - len(prefix) - len(suffix)) // (len(item) + 1)
    return prefix + b",".join([item] * count) + suffix


def long_string(char: bytes, size: int, *, in_id: bool) -> bytes:
    """A one-row V2 request with one string repeating ``char`` to fill ``size`` bytes.

    The string is the ``id`` (which the protocol bounds), or an item of a parameter's list
    (which it does not): that one reaches every stage that scans the body's strings.
    """
    prefix = b'{"id":"' if in_id else b'{"parameters":{"notes":["'
    suffix = b'"' if in_id else b'"]}'
    suffix += b',"inputs":[{"name":"input-0","shape":[1,4],"datatype":"FP64","data":[1,2,3,4]}]}'
    return prefix + char * ((size - len(prefix) - len(suffix)) // len(char)) + suffix


def bodies(size: int) -> dict[str, bytes]:
    """Every worst case, each close to ``size`` bytes."""
    keys: list[bytes] = []
    total = 2
    while total < size - 16:
        keys.append(b'"k%d":0' % len(keys))
        total += len(keys[-1]) + 1
    depth = size // 2
    rows = ",".join(["5.1,3.5,1.4,0.2"] * 10_000)
    tensor = {"name": "input-0", "shape": [10_000, 4], "datatype": "FP64"}
    v2 = (
        '{"inputs":[' + json.dumps({**tensor, "data": "ROWS"}).replace('"ROWS"', f"[{rows}]") + "]}"
    )
    return {
        # One string filling the body: plain, escaped quotes, \u escapes (the costliest bytes
        # for a string scanner).
        "long id": long_string(b"a", size, in_id=True),
        "long id, escaped quotes": long_string(b'\\"', size, in_id=True),
        "long id, \\u escapes": long_string(b"\\u0041", size, in_id=True),
        "long parameter": long_string(b"a", size, in_id=False),
        "long parameter, escaped": long_string(b'\\"', size, in_id=False),
        "long parameter, \\u": long_string(b"\\u0041", size, in_id=False),
        "distinct keys": b"{" + b",".join(keys) + b"}",
        "duplicate keys": fill(b'"a":0', b"{", b"}", size),
        "empty objects": fill(b"{}", b'{"instances":[', b"]}", size),
        "empty arrays": fill(b"[]", b'{"instances":[', b"]}", size),
        "wide integers": fill(b"1", b'{"instances":[[', b"]]}", size),
        "wide floats": fill(b"1.5", b'{"instances":[[', b"]]}", size),
        "deep nesting": b"[" * depth + b"]" * depth,
        "duplicate after floats": fill(b"1.5", b'{"instances":[[', b']],"instances":0}', size),
        "valid V2, 10k rows": v2.encode(),
    }


def call(app: Callable[..., Iterable[bytes]], path: str, body: bytes) -> tuple[str, bytes]:
    """POST ``body`` to ``path``; the status line and the answer."""
    statuses: list[str] = []
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "5000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
    }
    answer = b"".join(app(environ, lambda status, headers, exc=None: statuses.append(status)))
    return statuses[-1], answer


def main() -> None:
    """Print one row per body and route."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=0, help="body size (default: the limit)")
    parser.add_argument("--repeat", type=int, default=3, help="timed calls per body, best kept")
    args = parser.parse_args()
    app = create_app({"LOG_REQUESTS": False})
    limit = app.extensions["inference_server.pipeline"].body_reader.limit
    size = args.size or limit
    print(f"body limit {limit} bytes; worst cases of {size} bytes")
    print(f"{'body':24} {'route':5} {'bytes':>8} {'CPU ms':>7}  answer")
    for name, body in bodies(size).items():
        for route, path in ROUTES.items():
            best = float("inf")
            for _ in range(args.repeat):
                started = time.process_time()
                status, answer = call(app, path, body)
                best = min(best, time.process_time() - started)
            shown = f"{status[:3]} {answer[:70]!r}"
            print(f"{name:24} {route:5} {len(body):8} {best * 1000:7.1f}  {shown}")


if __name__ == "__main__":
    main()
