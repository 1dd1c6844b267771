"""The WSGI fast path answers exactly like Flask: same status, body bytes and headers.

A differential test: every request goes to an app with the fast path (the default) and to a
Flask-only app (``FAST_PATH=false``); the two answers must be identical. Generated bodies are
valid or nearly valid (the cases the fast path must answer or hand over), plus the existing
table of malformed bodies.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from werkzeug.test import TestResponse

from inference_server import create_app
from inference_server.fastpath import FastPath
from inference_server.logs import ACCESS_LOGGER, AccessLog
from inference_server.metrics import METRICS_KEY, Metrics

from .conftest import SETOSA, VIRGINICA
from .test_jsonio import BAD_ROWS, RAW_BAD_BODIES

PREDICT = "/predict"
INFER = "/v2/models/iris/infer"
COMPARED_HEADERS = ("Content-Type", "Content-Length", "X-Request-ID", "Allow", "WWW-Authenticate")


@pytest.fixture(scope="module")
def apps() -> tuple[Flask, Flask]:
    """(fast path on, Flask only), same default model."""
    fast = create_app({"LOG_REQUESTS": False})
    slow = create_app({"LOG_REQUESTS": False, "FAST_PATH": False})
    assert isinstance(fast.wsgi_app, FastPath)
    assert not isinstance(slow.wsgi_app, FastPath)
    return fast, slow


def _call(app: Flask, path: str, body: bytes, headers: dict[str, str]) -> TestResponse:
    return app.test_client().post(path, data=body, headers=headers)


def _assert_same(
    apps: tuple[Flask, Flask], path: str, body: bytes, content_type: str | None = "application/json"
) -> TestResponse:
    headers = {"X-Request-ID": "differential-1"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    fast, slow = (_call(app, path, body, headers) for app in apps)
    assert fast.status == slow.status, (body, fast.get_data(), slow.get_data())
    assert fast.get_data() == slow.get_data(), body
    for name in COMPARED_HEADERS:
        assert fast.headers.get(name) == slow.headers.get(name), (name, body)
    assert sorted(fast.headers.keys()) == sorted(slow.headers.keys())
    assert not fast.get_data().endswith(b"\n")
    json.loads(fast.get_data())
    return fast


def test_fast_path_answers_plain_predictions_without_flask(apps: tuple[Flask, Flask]) -> None:
    """Valid single rows, batches and V2 tensors never reach the Flask app."""
    fast, _ = apps
    assert isinstance(fast.wsgi_app, FastPath)
    flask_app = fast.wsgi_app.wsgi_app
    calls: list[str] = []

    def spy(environ: dict[str, Any], start_response: Any) -> Any:
        calls.append(environ["PATH_INFO"])
        return flask_app(environ, start_response)

    fast.wsgi_app.wsgi_app = spy
    try:
        client = fast.test_client()
        assert client.post(PREDICT, json={"features": SETOSA}).json == {
            "prediction": 0,
            "label": "setosa",
        }
        assert client.post(PREDICT, json={"instances": [SETOSA, VIRGINICA]}).status_code == 200
        tensor = {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": VIRGINICA}
        answer = client.post(INFER, json={"id": "r1", "inputs": [tensor]}).json
        assert answer == {
            "model_name": "iris",
            "outputs": [{"name": "predict", "datatype": "INT64", "shape": [1], "data": [2]}],
            "id": "r1",
        }
        assert calls == []
        client.post(PREDICT, json={"features": SETOSA, "probabilities": True})
        client.post(PREDICT, json={"features": [1, 2, 3]})
        assert calls == [PREDICT, PREDICT]  # options and errors: Flask
    finally:
        fast.wsgi_app.wsgi_app = flask_app


def test_fast_path_is_off_with_auth_or_when_disabled(tmp_path: Path) -> None:
    """Bearer tokens (checked by Flask) or INFERENCE_FAST_PATH=false: Flask answers all."""
    assert not isinstance(create_app({"AUTH_TOKENS": "t0ken"}).wsgi_app, FastPath)
    assert not isinstance(create_app({"FAST_PATH": "false"}).wsgi_app, FastPath)
    assert isinstance(create_app({"FAST_PATH": "true"}).wsgi_app, FastPath)


def _samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in metrics.registry.collect()
        for s in family.samples
        # latency buckets and sums depend on timing; their counts and the rest must match
        if not s.name.endswith(("_created", "_sum"))
        and s.name not in {"inference_model_info", "inference_request_duration_seconds_bucket"}
    }


def test_metrics_match_flask() -> None:
    """Latency counts (route/method/status), predictions and rows are counted the same way."""
    fast, slow = (
        create_app({"LOG_REQUESTS": False}),
        create_app({"LOG_REQUESTS": False, "FAST_PATH": False}),
    )
    tensor = {"name": "x", "shape": [2, 4], "datatype": "FP64", "data": SETOSA + VIRGINICA}
    for app in (fast, slow):
        client = app.test_client()
        client.post(PREDICT, json={"features": SETOSA})
        client.post(PREDICT, json={"instances": [SETOSA, VIRGINICA, VIRGINICA]})
        client.post(PREDICT, json={"features": "bad"})
        client.post(INFER, json={"inputs": [tensor]})
    fast_samples = _samples(fast.extensions[METRICS_KEY])
    assert fast_samples == _samples(slow.extensions[METRICS_KEY])
    key = (
        "inference_request_duration_seconds_count",
        (("method", "POST"), ("route", PREDICT), ("status", "200")),
    )
    assert fast_samples[key] == 2


def test_access_log_line_matches_flask(caplog: pytest.LogCaptureFixture) -> None:
    """The fast path writes the same access-log fields as Flask's after_request hook."""
    logger = logging.getLogger(ACCESS_LOGGER)
    logger.addHandler(caplog.handler)
    try:
        for fast_path in (True, False):
            app = create_app({"LOG_REQUESTS": True, "FAST_PATH": fast_path})
            app.test_client().post(
                PREDICT, json={"features": SETOSA}, headers={"X-Request-ID": "log-1"}
            )
    finally:
        logger.removeHandler(caplog.handler)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == ACCESS_LOGGER]
    assert len(lines) == 2
    for line in lines:
        assert line.pop("latency_ms") >= 0
    assert (
        lines[0]
        == lines[1]
        == {
            "method": "POST",
            "path": PREDICT,
            "status": 200,
            "request_id": "log-1",
            "remote_addr": "127.0.0.1",
        }
    )


def test_access_log_writes_one_line_per_call_to_its_stream(tmp_path: Path) -> None:
    """With its own stdout-style handler the line goes out in one os.write, newline-ended."""
    logger = logging.getLogger(ACCESS_LOGGER)
    saved = list(logger.handlers)
    with (tmp_path / "access.log").open("w") as stream:
        logger.handlers = [logging.StreamHandler(stream)]
        try:
            access_log = AccessLog()
            access_log.write({"path": "/predict", "status": 200})
            logger.setLevel(logging.WARNING)
            access_log.write({"path": "/hidden", "status": 200})
        finally:
            logger.setLevel(logging.INFO)
            logger.handlers = saved
    assert (tmp_path / "access.log").read_bytes() == b'{"path":"/predict","status":200}\n'


@pytest.mark.parametrize(("body", "status"), RAW_BAD_BODIES)
@pytest.mark.parametrize("path", [PREDICT, INFER])
def test_bad_input_table_is_answered_like_flask(
    apps: tuple[Flask, Flask], path: str, body: bytes, status: int
) -> None:
    """Every malformed body of the strict-JSON table: identical error responses."""
    assert _assert_same(apps, path, body).status_code >= 400 or path == INFER


@pytest.mark.parametrize("rows", BAD_ROWS)
def test_bad_rows_are_answered_like_flask(apps: tuple[Flask, Flask], rows: list[Any]) -> None:
    """Bad values in rows: Flask's 400 with the row/column message, on both routes."""
    _assert_same(apps, PREDICT, json.dumps({"instances": rows}).encode())
    tensor = {"name": "x", "shape": [len(rows), 4], "datatype": "FP32", "data": rows}
    _assert_same(apps, INFER, json.dumps({"inputs": [tensor]}).encode())


@pytest.mark.parametrize(
    "content_type",
    [None, "application/json", "application/json; charset=utf-8", "text/plain", "application/x"],
)
def test_content_types_are_answered_like_flask(
    apps: tuple[Flask, Flask], content_type: str | None
) -> None:
    """A missing Content-Type means JSON; others are Flask's to accept or refuse."""
    _assert_same(apps, PREDICT, json.dumps({"features": SETOSA}).encode(), content_type)


def test_oversized_and_odd_requests_are_answered_like_flask(make_app: Any) -> None:
    """Over the body limit, other methods and paths: Flask's answers."""
    small = (make_app(MAX_CONTENT_LENGTH=40), make_app(MAX_CONTENT_LENGTH=40, FAST_PATH=False))
    _assert_same(small, PREDICT, json.dumps({"instances": [SETOSA] * 5}).encode())
    _assert_same(small, PREDICT, json.dumps({"features": SETOSA}).encode())
    few_rows = (make_app(MAX_ROWS=2), make_app(MAX_ROWS=2, FAST_PATH=False))
    _assert_same(few_rows, PREDICT, json.dumps({"instances": [SETOSA] * 3}).encode())
    for app in small:
        assert app.test_client().get(PREDICT).status_code == 405


# Values a row may hold: mostly valid numbers, sometimes what the library must refuse.
_value = st.one_of(
    st.floats(min_value=-20, max_value=20, allow_nan=False),
    st.integers(min_value=-100, max_value=100),
    st.sampled_from([0, 1, 0.0, -0.0, 1e6, -1e6, 1.0000001e6, 1e300, True, False, None, "1"]),
)
_valid_value = st.floats(min_value=0, max_value=8, allow_nan=False) | st.integers(0, 8)
_row = st.one_of(
    st.lists(_valid_value, min_size=4, max_size=4),
    st.lists(_value, min_size=4, max_size=4),
    st.lists(_value, min_size=0, max_size=6),
)
_rows = st.lists(_row, min_size=0, max_size=6)
_junk = st.sampled_from([None, True, 1, "x", [], {}, [1, 2], {"a": 1}])


@st.composite
def _predict_body(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if draw(st.booleans()):
        body["features"] = draw(_row | _junk)
    else:
        body["instances"] = draw(_rows | _junk)
    if draw(st.integers(0, 5)) == 0:
        body["probabilities"] = draw(st.booleans() | _junk)
    if draw(st.integers(0, 9)) == 0:
        body["features" if "instances" in body else "instances"] = draw(_rows)
    if draw(st.integers(0, 9)) == 0:
        body["extra"] = draw(_junk)
    return body


@st.composite
def _infer_body(draw: st.DrawFn) -> dict[str, Any]:
    rows = draw(_rows.filter(bool))
    n = len(rows)
    nested = draw(st.booleans())
    data: Any = rows if nested else [v for row in rows for v in row]
    tensor: dict[str, Any] = {
        "name": draw(st.sampled_from(["input-0", "x"]) | _junk),
        "shape": draw(
            st.sampled_from([[n, 4], [n, 4], [n, 4], [n], [n, 3], [0, 4], [n, 4.0], [True, 4]])
        ),
        "datatype": draw(st.sampled_from(["FP32", "FP64", "FP64", "INT64", "fp32"])),
        "data": draw(st.just(data) | st.just(data) | _junk),
    }
    if draw(st.integers(0, 9)) == 0:
        del tensor[draw(st.sampled_from(sorted(tensor)))]
    if draw(st.integers(0, 9)) == 0:
        tensor["parameters"] = draw(
            st.sampled_from([{}, {"binary_data": False}, {"binary_data": True}])
        )
    body: dict[str, Any] = {"inputs": [tensor]}
    if draw(st.booleans()):
        body["id"] = draw(st.text(max_size=8) | _junk)
    if draw(st.integers(0, 9)) == 0:
        body["outputs"] = draw(
            st.sampled_from([[], [{"name": "predict"}], [{"name": "predict_proba"}], "x"])
        )
    if draw(st.integers(0, 9)) == 0:
        body["inputs"] = draw(st.sampled_from([[], [tensor, tensor], "x", [None]]))
    return body


@seed(8)
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=_predict_body())
def test_predict_differential(apps: tuple[Flask, Flask], body: dict[str, Any]) -> None:
    """Generated /predict bodies: fast-path app == Flask-only app."""
    _assert_same(apps, PREDICT, json.dumps(body).encode())


@seed(8)
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=_infer_body())
def test_infer_differential(apps: tuple[Flask, Flask], body: dict[str, Any]) -> None:
    """Generated V2 infer bodies: fast-path app == Flask-only app."""
    _assert_same(apps, INFER, json.dumps(body).encode())


def test_a_surprise_in_the_fast_path_is_left_to_flask(
    make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected exception before anything was written: Flask answers the request."""
    app = make_app()

    def broken(self: FastPath, rows: list[Any]) -> list[int]:
        raise RuntimeError("bug")

    monkeypatch.setattr(FastPath, "_score", broken)
    response = app.test_client().post(PREDICT, json={"features": SETOSA})
    assert response.status_code == 200
    assert response.json == {"prediction": 0, "label": "setosa"}
