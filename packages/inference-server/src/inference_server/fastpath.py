"""The success path of the two prediction routes as plain WSGI, in front of Flask.

Why: for a single row, Flask/Werkzeug's per-request machinery (request and app contexts,
routing, ``before``/``after_request`` hooks, the ``Response`` object) costs more than the
prediction itself. In-process (``bench/wsgi_micro.py``, loaded 2-core box) ``/predict`` took
162 us through Flask vs 50 us for a constant-JSON Flask app; on this path it takes ~40 us.

What: a ``POST /predict`` or ``POST /v2/models/iris/infer`` that would certainly get a 200 is
answered here: JSON content type (or none), a plain ``Content-Length`` within the limit, a body
that orjson decodes and :func:`inference_server.jsonio.loads_if_proven` proves strict-equal, the
exact shapes the routes accept without options (no ``probabilities``, ``parameters`` or
``outputs``), and rows the model validates. EVERYTHING else, including every error, is handed
to the Flask app with the body re-wrapped, so Flask still makes every non-200 response and
this module never writes an error. Nothing is observed before the answer is certain, so a
request handed over is counted once, by Flask.

The response is byte-for-byte Flask's (``jsonio.dumps`` of the same dict, Content-Type,
Content-Length, X-Request-ID), and the request id, the latency histogram (same route labels),
the prediction/row metrics and the access-log line are the same as Flask's.
``tests/test_fastpath.py`` checks that against a Flask-only app (``INFERENCE_FAST_PATH=false``)
on generated bodies. Off when bearer-token auth is configured (Flask checks tokens).
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

import iris_model
from inference_server.jsonio import JSON_MIMETYPE, MISS, dumps, loads_if_proven, read_exactly
from inference_server.logs import REQUEST_ID_HEADER, AccessLog, valid_request_id
from inference_server.metrics import Metrics
from inference_server.predictions import MODEL_NAME

WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]

PREDICT_PATH = "/predict"
INFER_PATH = f"/v2/models/{MODEL_NAME}/infer"
_V2_DATATYPES = ("FP32", "FP64")
_V2_REQUEST_KEYS = frozenset({"id", "inputs"})
_V2_TENSOR_KEYS = frozenset({"name", "shape", "datatype", "data"})


class FastPath:
    """WSGI middleware: answers certain-200 prediction requests, delegates all else."""

    def __init__(
        self,
        wsgi_app: WSGIApp,
        *,
        model: iris_model.IrisModel,
        metrics: Metrics,
        max_content_length: int,
        access_log: AccessLog | None,
    ) -> None:
        """Wrap ``wsgi_app`` (the Flask app's ``wsgi_app``).

        Args:
            wsgi_app: The app that answers everything this path does not.
            model: The served model.
            metrics: The app's metrics (same objects Flask's hooks update).
            max_content_length: Largest accepted body; longer ones go to Flask (413).
            access_log: Where to write the access-log line, or None when logging is off.
        """
        self.wsgi_app = wsgi_app
        self.model = model
        self.metrics = metrics
        self.limit = max_content_length
        self.access_log = access_log
        self.n_features = model.n_features
        self.label = model.classes.__getitem__
        self.latency = {
            path: metrics.latency.labels(path, "POST", "200") for path in (PREDICT_PATH, INFER_PATH)
        }

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        """Answer ``environ`` here if it is a plain successful prediction, else via Flask."""
        path = environ.get("PATH_INFO")
        if (
            path not in self.latency
            or environ.get("REQUEST_METHOD") != "POST"
            or environ.get("CONTENT_TYPE", "") not in ("", JSON_MIMETYPE)
            or "HTTP_TRANSFER_ENCODING" in environ
        ):
            return self.wsgi_app(environ, start_response)
        length = environ.get("CONTENT_LENGTH", "")
        if not (length.isascii() and length.isdigit()) or int(length) > self.limit:
            return self.wsgi_app(environ, start_response)
        started = time.perf_counter()
        body = read_exactly(environ["wsgi.input"], int(length))
        try:
            answer = self._predict(body) if path == PREDICT_PATH else self._infer(body)
        except iris_model.IrisModelError:  # invalid rows, too many rows: Flask says why
            answer = None
        except Exception:  # a surprise: Flask answers (and logs) it the usual way
            answer = None  # safe: nothing was observed or written yet
        if answer is None:
            environ["wsgi.input"] = io.BytesIO(body)
            return self.wsgi_app(environ, start_response)
        payload, indices = answer
        incoming = environ.get("HTTP_X_REQUEST_ID")
        request_id = incoming if incoming and valid_request_id(incoming) else os.urandom(16).hex()
        self.metrics.observe_predictions(indices)
        start_response(
            "200 OK",
            [
                ("Content-Type", JSON_MIMETYPE),
                ("Content-Length", str(len(payload))),
                (REQUEST_ID_HEADER, request_id),
            ],
        )
        elapsed = time.perf_counter() - started
        self.latency[path].observe(elapsed)
        if self.access_log is not None:
            self.access_log.write(
                {
                    "method": "POST",
                    "path": path,
                    "status": 200,
                    "latency_ms": round(elapsed * 1000, 3),
                    "request_id": request_id,
                    "remote_addr": environ.get("REMOTE_ADDR"),
                }
            )
        return [payload]

    def _score(self, rows: list[Any]) -> list[int]:
        """Validate and score like ``predictions.predict`` (raises IrisModelError)."""
        indices: list[int] = self.model.predict(rows).tolist()
        return indices

    def _predict(self, body: bytes) -> tuple[bytes, list[int]] | None:
        """``POST /predict`` with exactly ``features`` or ``instances`` and nothing else."""
        doc = loads_if_proven(body)
        if doc is MISS or type(doc) is not dict or len(doc) != 1:
            return None
        if "features" in doc:
            features = doc["features"]
            if type(features) is not list:
                return None
            indices = self._score([features])
            return dumps({"prediction": indices[0], "label": self.label(indices[0])}), indices
        rows = doc.get("instances")
        if type(rows) is not list or not rows or type(rows[0]) is not list:
            return None
        indices = self._score(rows)
        labels = list(map(self.label, indices))
        return dumps({"predictions": indices, "labels": labels}), indices

    def _infer(self, body: bytes) -> tuple[bytes, list[int]] | None:
        """Open Inference Protocol infer: one FP32/FP64 tensor, the default output only."""
        doc = loads_if_proven(body)
        if doc is MISS or type(doc) is not dict or not doc.keys() <= _V2_REQUEST_KEYS:
            return None
        request_id = doc.get("id")
        inputs = doc.get("inputs")
        if ("id" in doc and type(request_id) is not str) or type(inputs) is not list:
            return None
        rows = self._tensor_rows(inputs)
        if rows is None:
            return None
        indices = self._score(rows)
        answer: dict[str, Any] = {
            "model_name": MODEL_NAME,
            "outputs": [
                {"name": "predict", "datatype": "INT64", "shape": [len(indices)], "data": indices}
            ],
        }
        if request_id is not None:
            answer["id"] = request_id
        return dumps(answer), indices

    def _tensor_rows(self, inputs: list[Any]) -> list[Any] | None:
        """The rows of the one input tensor, when v2.infer would accept it as is."""
        if len(inputs) != 1 or type(inputs[0]) is not dict:
            return None
        tensor = inputs[0]
        if tensor.keys() != _V2_TENSOR_KEYS or type(tensor["name"]) is not str:
            return None
        shape, data = tensor["shape"], tensor["data"]
        if (
            tensor["datatype"] not in _V2_DATATYPES
            or type(shape) is not list
            or len(shape) != 2
            or type(shape[0]) is not int
            or shape[0] < 1
            or shape[1] != self.n_features
            or type(shape[1]) is not int
            or type(data) is not list
            or not data
        ):
            return None
        n_rows, n_columns = shape
        if type(data[0]) is list:
            return data if len(data) == n_rows else None
        if len(data) != n_rows * n_columns:
            return None
        return [data[i : i + n_columns] for i in range(0, len(data), n_columns)]
