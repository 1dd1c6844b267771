"""The generic HTTP machinery: nothing here knows a model, a protocol or ``iris_model``.

- :mod:`~inference_server.http.pipeline`: the one WSGI wrapper every route goes through
  (routing, request id, auth, body, errors, metrics, access log);
- :mod:`~inference_server.http.errors`: :class:`ApiError` and the one error body;
- :mod:`~inference_server.http.bodies`: Content-Type, bounded body reads and their deadlines;
- :mod:`~inference_server.http.strictjson`: strict JSON decoding, fast encoding;
- :mod:`~inference_server.http.logs`: request ids and the JSON access-log line;
- :mod:`~inference_server.http.auth`: bearer tokens, re-read when their file changes;
- :mod:`~inference_server.http.lifecycle`: a worker's readiness;
- :mod:`~inference_server.http.worker` and :mod:`~inference_server.http.gunicorn`: the
  Gunicorn worker, hooks and logging that ``inference_server.gunicorn_conf`` wires up.

A test scans these modules' imports: none may import ``iris_model`` or the ML-facing part.
"""
