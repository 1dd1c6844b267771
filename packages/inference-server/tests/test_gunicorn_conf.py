"""The Gunicorn configuration module: environment-driven settings and hooks."""

from __future__ import annotations

import gc
import importlib
import json
import logging
import os
import platform
import signal
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from gunicorn.glogging import Logger  # type: ignore[import-untyped,unused-ignore]

import inference_server.gunicorn_conf as conf_module
from inference_server.http import gunicorn as machinery
from inference_server.http import lifecycle
from inference_server.http.bodies import READ_CHUNK
from inference_server.http.lifecycle import LIFECYCLE_KEY, Lifecycle
from inference_server.settings import specs

#: The variables the config module reads (the settings model's Gunicorn scope).
GUNICORN_ENV = tuple(spec.env for _name, spec, _default in specs() if spec.scope == "gunicorn")


@pytest.fixture
def load_conf(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """Re-import the config module under a given environment."""
    for name in GUNICORN_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))

    def load(**env: str) -> ModuleType:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return importlib.reload(conf_module)

    yield load
    gc.unfreeze()  # the module freezes the GC for forked workers; not for this test process


def test_defaults(load_conf: Any) -> None:
    """Port 5000, 2 gevent workers, 20 s graceful timeout, no control socket, tmpfs heartbeat."""
    conf = load_conf()
    assert conf.bind == ["0.0.0.0:5000"]
    assert conf.workers == 2
    assert conf.worker_class == "inference_server.http.worker.FairGeventWorker"
    assert conf.threads == 4
    assert conf.timeout == 30
    assert conf.graceful_timeout == 20
    assert conf.max_requests == 0
    assert conf.control_socket_disable is True
    assert conf.preload_app is False
    assert conf.accesslog is None
    assert conf.worker_tmp_dir in ("/dev/shm", None)  # noqa: S108
    assert conf.logconfig_dict["handlers"]["stdout"]["stream"] == "ext://sys.stdout"


def test_environment_overrides(load_conf: Any) -> None:
    """Every setting follows its variable; jitter defaults to 10% of max_requests."""
    conf = load_conf(
        INFERENCE_BIND="127.0.0.1:8080",
        WEB_CONCURRENCY="3",
        INFERENCE_THREADS="8",
        INFERENCE_TIMEOUT="60",
        INFERENCE_GRACEFUL_TIMEOUT="5",
        INFERENCE_KEEPALIVE="2",
        INFERENCE_MAX_REQUESTS="1000",
    )
    assert conf.bind == ["127.0.0.1:8080"]
    assert (conf.workers, conf.threads, conf.timeout) == (3, 8, 60)
    assert (conf.graceful_timeout, conf.keepalive) == (5, 2)
    assert (conf.max_requests, conf.max_requests_jitter) == (1000, 100)


def test_jitter_is_at_least_ten_percent(load_conf: Any) -> None:
    """A smaller jitter is raised to 10 %; a larger one is kept."""
    assert (
        load_conf(
            INFERENCE_MAX_REQUESTS="500", INFERENCE_MAX_REQUESTS_JITTER="5"
        ).max_requests_jitter
        == 50
    )
    assert load_conf(INFERENCE_MAX_REQUESTS_JITTER="80").max_requests_jitter == 80


@pytest.mark.parametrize("value", ["two", "-1"])
def test_invalid_numbers_stop_start_up(load_conf: Any, value: str) -> None:
    """A non-integer or negative value stops Gunicorn with a message naming the variable."""
    with pytest.raises(SystemExit, match="WEB_CONCURRENCY"):
        load_conf(WEB_CONCURRENCY=value)


def test_on_starting_empties_the_metrics_directory(load_conf: Any, tmp_path: Path) -> None:
    """Stale multiprocess files of a previous run are removed at start."""
    conf = load_conf()
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_1.db").write_bytes(b"old")
    (directory / "keep.txt").write_text("x")
    conf.on_starting(None)
    assert not (directory / "counter_1.db").exists()
    assert (directory / "keep.txt").exists()


def test_sigterm_flips_readiness_then_calls_gunicorn(load_conf: Any) -> None:
    """post_worker_init wraps the worker's SIGTERM handler: readiness first, then Gunicorn's."""
    conf = load_conf()
    lifecycle = Lifecycle()
    lifecycle.mark_ready()
    calls: list[int] = []
    worker = SimpleNamespace(wsgi=SimpleNamespace(extensions={LIFECYCLE_KEY: lifecycle}))
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: calls.append(signum))
    try:
        conf.post_worker_init(worker)
        handler = signal.getsignal(signal.SIGTERM)
        assert callable(handler)
        handler(signal.SIGTERM, None)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert not lifecycle.ready
    assert lifecycle.reason == "shutting down"
    assert calls == [signal.SIGTERM]


def test_child_exit_marks_worker_dead(load_conf: Any, tmp_path: Path) -> None:
    """child_exit removes the dead worker's live-gauge files."""
    conf = load_conf()
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "gauge_livesum_4242.db").write_bytes(b"")
    (directory / "gauge_livesum_4243.db").write_bytes(b"")
    conf.child_exit(None, SimpleNamespace(pid=4242))
    assert not (directory / "gauge_livesum_4242.db").exists()
    assert (directory / "gauge_livesum_4243.db").exists()


def test_other_wsgi_apps_are_left_alone(load_conf: Any) -> None:
    """With an app that is not ours, post_worker_init only warns and keeps Gunicorn's handler."""
    conf = load_conf()
    warnings: list[str] = []
    worker = SimpleNamespace(
        wsgi=lambda environ, start: [], log=SimpleNamespace(warning=warnings.append)
    )
    before = signal.getsignal(signal.SIGTERM)
    conf.post_worker_init(worker)
    assert signal.getsignal(signal.SIGTERM) is before
    assert warnings


_PROBE = """
import gc, json, os, sys
before = gc.get_freeze_count()
import inference_server.gunicorn_conf as conf
print(json.dumps({
    "modules": sorted(m for m in (
        "flask", "numpy", "orjson", "prometheus_client", "sklearn.linear_model",
        "inference_server.app") if m in sys.modules),
    "frozen": gc.get_freeze_count() - before,
    "omp": os.environ.get("OMP_NUM_THREADS"),
    "openblas": os.environ.get("OPENBLAS_NUM_THREADS"),
    "preload": conf.preload_app,
}))
"""


def _probe(tmp_path: Path, **env: str) -> dict[str, Any]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"} and not k.startswith("INFERENCE_")
    }
    clean["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")
    clean.update(env)
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], env=clean, capture_output=True, text=True, check=True
    ).stdout
    result: dict[str, Any] = json.loads(out.splitlines()[-1])
    return result


def test_master_imports_heavy_modules_then_freezes_gc(tmp_path: Path) -> None:
    """Workers share the imported code copy-on-write; the model is still loaded per worker."""
    probe = _probe(tmp_path)
    heavy = ["flask", "numpy", "orjson", "prometheus_client", "sklearn.linear_model"]
    assert probe["modules"] == sorted([*heavy, "inference_server.app"])
    assert probe["frozen"] > 10_000  # the imported modules' objects moved to the permanent gen
    assert probe["preload"] is False


def test_one_blas_thread_per_worker_by_default(tmp_path: Path) -> None:
    """OMP/OpenBLAS default to 1 thread (set before NumPy is imported); explicit values win."""
    assert (_probe(tmp_path)["omp"], _probe(tmp_path)["openblas"]) == ("1", "1")
    probe = _probe(tmp_path, OMP_NUM_THREADS="3", OPENBLAS_NUM_THREADS="2")
    assert (probe["omp"], probe["openblas"]) == ("3", "2")


def test_gunicorn_access_log_is_a_no_op(load_conf: Any) -> None:
    """The app logs its own line: Gunicorn's logger never builds access-log atoms."""
    from gunicorn.config import Config  # noqa: PLC0415

    conf = load_conf()
    assert issubclass(conf.logger_class, Logger)
    cfg = Config()
    cfg.set("logger_class", conf.logger_class)
    assert cfg.logger_class is conf.logger_class
    logger = conf.logger_class(cfg)
    assert logger.access_log_enabled is False

    class Exploding:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"access() read {name}")

    assert logger.access(Exploding(), Exploding(), {}, Exploding()) is None


def test_post_worker_init_freezes_the_loaded_app_for_the_gc(load_conf: Any) -> None:
    """Objects a worker made before serving (its app, its model) leave the GC's reach."""
    conf = load_conf()
    threshold = gc.get_threshold()
    made_by_the_worker = [{"model": [object()]} for _ in range(100)]
    gc.unfreeze()
    worker = SimpleNamespace(
        wsgi=lambda environ, start: [], log=SimpleNamespace(warning=lambda message: None)
    )
    try:
        conf.post_worker_init(worker)
        assert gc.get_freeze_count() >= len(made_by_the_worker)
        assert gc.get_threshold()[0] == lifecycle.GC_YOUNG_THRESHOLD
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_large_allocations_are_mapped_on_their_own(
    load_conf: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Glibc takes the fixed mmap threshold; an explicit MALLOC_MMAP_THRESHOLD_ wins."""
    load_conf()
    assert machinery.map_large_allocations(READ_CHUNK) is True
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    assert machinery.map_large_allocations(READ_CHUNK) is False


def _request(*headers: tuple[str, str], version: tuple[int, int] = (1, 1)) -> Any:
    return SimpleNamespace(headers=list(headers), version=version, method="POST", path="/")


def test_pre_request_refuses_stacked_codings_and_a_missing_host(load_conf: Any) -> None:
    """Only a lone ``chunked`` coding (else 501); exactly one Host on HTTP/1.1 (else 400)."""
    from gunicorn.http.errors import (  # type: ignore[import-untyped,unused-ignore]  # noqa: PLC0415
        InvalidHeader,
        UnsupportedTransferCoding,
    )

    conf = load_conf()
    worker = SimpleNamespace(log=SimpleNamespace(debug=lambda *args: None))
    conf.pre_request(worker, _request(("HOST", "x"), ("TRANSFER-ENCODING", " Chunked ")))
    conf.pre_request(worker, _request(version=(1, 0)))
    for coding in ("gzip, chunked", "identity, chunked", "gzip"):
        with pytest.raises(UnsupportedTransferCoding):
            conf.pre_request(worker, _request(("HOST", "x"), ("TRANSFER-ENCODING", coding)))
    for hosts in ((), (("HOST", "a"), ("HOST", "b"))):
        with pytest.raises(InvalidHeader, match="HOST"):
            conf.pre_request(worker, _request(*hosts))


@pytest.mark.parametrize(
    ("framed", "outcome"),
    [
        (b"2\r\n{}\r\n0\r\n\r\n", "read"),
        (b"2\n{}\n0\n\n", "refused"),
        (b"2\r\n{}\r\n0\n\r\n", "refused"),
        (b"F" * 17 + b"\r\n{}", "refused"),
        (b"8000000000000000\r\n{}", "refused"),
        (b"7FFFFFFFFFFFFFFF\r\n{}", "waits"),  # the largest size: the bytes must follow
    ],
)
def test_chunked_reader_refuses_bare_lf_and_overflowing_sizes(
    load_conf: Any, framed: bytes, outcome: str
) -> None:
    """Gunicorn's reader, with a bare LF or a size over 2**63 - 1 refused as it arrives."""
    from gunicorn.http import message  # type: ignore[import-untyped,unused-ignore]  # noqa: PLC0415
    from gunicorn.http.errors import (  # type: ignore[import-untyped,unused-ignore]  # noqa: PLC0415
        InvalidChunkSize,
        NoMoreData,
    )
    from gunicorn.http.unreader import (  # type: ignore[import-untyped,unused-ignore]  # noqa: PLC0415
        IterUnreader,
    )

    load_conf()
    assert message.ChunkedReader is machinery.StrictChunkedReader
    request = SimpleNamespace(limit_request_field_size=8190, max_buffer_headers=0)
    reader = machinery.StrictChunkedReader(request, IterUnreader([framed]))
    if outcome == "read":
        assert reader.read(100) == b"{}"
        return
    # Refused: at once. Waits: for bytes that never come (here, the end of the input).
    with pytest.raises(InvalidChunkSize if outcome == "refused" else NoMoreData):
        reader.read(100)


def test_refused_requests_get_a_json_answer_and_access_line(
    load_conf: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Gunicorn's error answer is JSON and gets one access line with a bounded excerpt.

    Its warning quoting the client's bytes is bounded too.
    """
    import socket  # noqa: PLC0415

    from gunicorn.config import Config  # noqa: PLC0415

    from inference_server.http.logs import ACCESS_LOGGER  # noqa: PLC0415

    conf = load_conf()
    quoted = "Invalid Request Line '" + "Q" * 4000 + "'"
    access = logging.getLogger(ACCESS_LOGGER)
    server_end, client_end = socket.socketpair()
    with server_end, client_end, caplog.at_level(logging.INFO):
        access.addHandler(caplog.handler)
        try:
            machinery.write_json_error(server_end, 400, "Bad Request", quoted)
        finally:
            access.removeHandler(caplog.handler)
        answer = client_end.recv(65536)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\nConnection: close")
    assert len(json.loads(body)["error"]) <= 300
    # By record identity: caplog's handler may see a record both directly and through root.
    records = {id(r): r for r in caplog.records if r.name == ACCESS_LOGGER}
    (line,) = [json.loads(r.getMessage()) for r in records.values()]
    assert line["status"] == 400
    assert (line["method"], line["path"], line["latency_ms"]) == (None, None, None)
    assert line["rejected"].startswith("Bad Request: Invalid Request Line 'QQQ")
    assert len(line["rejected"]) <= 300
    cfg = Config()
    cfg.set("logger_class", conf.logger_class)
    logger = conf.logger_class(cfg)
    with caplog.at_level(logging.WARNING, logger="gunicorn.error"):
        logger.warning("Invalid request from ip=%s: %s", "127.0.0.1", quoted)
    (warning,) = [r for r in caplog.records if r.name == "gunicorn.error"]
    assert len(warning.getMessage()) <= 300
