"""The Granian front end's machinery and config module, without starting Granian.

The live suites (``test_live_*.py``) run a real Granian under every contract test that
applies; these check what they cannot see: parsing, logging, the SIGTERM hook Granian's
internals are wrapped for, and the messages of a bad configuration.
"""

from __future__ import annotations

import logging
import logging.config
import signal
import sys
from typing import Any

import pytest
from granian import _signals

from inference_server import __main__ as cli
from inference_server import granian_conf
from inference_server.http import granian as machinery
from inference_server.http.lifecycle import LIFECYCLE_KEY, Lifecycle


@pytest.mark.parametrize(
    ("bind", "expected"),
    [("0.0.0.0:5000", ("0.0.0.0", 5000)), ("[::]:8080", ("::", 8080))],  # noqa: S104
)
def test_split_bind_gives_address_and_port(bind: str, expected: tuple[str, int]) -> None:
    """``host:port`` and ``[v6]:port`` become Granian's address and port."""
    assert machinery.split_bind(bind) == expected


@pytest.mark.parametrize("bind", ["5000", "unix:/tmp/s.sock", "host:0", "host:70000", ":80"])
def test_split_bind_refuses_what_granian_cannot_bind(bind: str) -> None:
    """Anything but host:port with a real port is refused, naming the variable."""
    with pytest.raises(ValueError, match="INFERENCE_BIND"):
        machinery.split_bind(bind)


def test_logconfig_sends_granian_and_app_logs_to_stdout_and_drops_its_access_log() -> None:
    """Every key Granian uses is given (it replaces whole keys), its access log is off."""
    config = machinery.logconfig("debug")
    assert config["root"] == {"level": "DEBUG", "handlers": ["stdout"]}
    assert config["loggers"]["_granian"]["handlers"] == ["stdout"]
    assert config["loggers"]["granian.access"]["handlers"] == []
    logging.config.dictConfig(config)  # a valid configuration
    assert logging.getLogger("granian.access").level == logging.WARNING


@pytest.fixture
def restore_signals() -> Any:
    """Put back Granian's ``set_main_signals`` and the process's SIGTERM/SIGINT handlers."""
    install = _signals.set_main_signals
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield
    _signals.set_main_signals = install
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


@pytest.mark.usefixtures("restore_signals")
def test_sigterm_flips_readiness_before_granian_drains() -> None:
    """The handler Granian installs after loading the app calls begin_shutdown first."""
    order: list[str] = []
    machinery.tie_readiness_to_sigterm(lambda: order.append("readiness"))
    _signals.set_sync_signals().add_cb(lambda: order.append("drain"))  # as Granian's worker does
    handler = signal.getsignal(signal.SIGTERM)
    assert callable(handler)
    handler(signal.SIGTERM, None)
    assert order[0] == "readiness"


@pytest.mark.usefixtures("restore_signals")
def test_load_app_builds_the_app_and_ties_its_lifecycle(monkeypatch: pytest.MonkeyPatch) -> None:
    """load_app calls the factory, freezes the worker and hooks the app's Lifecycle."""
    lifecycle = Lifecycle()
    lifecycle.mark_ready()
    app = type("App", (), {"extensions": {LIFECYCLE_KEY: lifecycle}})()
    module = type(sys)("fake_target")
    module.make = lambda: app  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_target", module)
    assert machinery.load_app("fake_target:make") is app
    _signals.set_main_signals(lambda signum, frame: None)
    handler = signal.getsignal(signal.SIGTERM)
    assert callable(handler)
    handler(signal.SIGTERM, None)
    assert lifecycle.reason == "shutting down"


def test_load_app_warns_for_an_app_without_lifecycle(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Another WSGI app is served, with a warning that readiness is not tied to SIGTERM."""
    plain = object()
    module = type(sys)("fake_plain")
    module.app = lambda: plain  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_plain", module)
    monkeypatch.setattr(machinery, "settle_worker", lambda: None)
    with caplog.at_level(logging.WARNING, "inference_server"):
        assert machinery.load_app("fake_plain") is plain  # the factory is "app" by default
    assert "readiness is not tied to SIGTERM" in caplog.text


def test_config_refuses_a_bind_granian_cannot_use(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad INFERENCE_BIND stops the launcher with the variable named."""
    monkeypatch.setenv("INFERENCE_BIND", "unix:/tmp/server.sock")
    with pytest.raises(SystemExit, match="INFERENCE_BIND"):
        granian_conf.load()


def test_main_refuses_an_unknown_front_end(monkeypatch: pytest.MonkeyPatch) -> None:
    """INFERENCE_HTTP_SERVER is checked like every setting, with the choices named."""
    monkeypatch.setenv("INFERENCE_HTTP_SERVER", "uwsgi")
    with pytest.raises(SystemExit, match="INFERENCE_HTTP_SERVER must be one of gunicorn, granian"):
        cli.main([])


def test_main_runs_granian_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--http-server granian`` runs the Granian config module, not Gunicorn."""
    ran: list[str] = []
    monkeypatch.setattr(granian_conf, "main", lambda: ran.append("granian"))
    monkeypatch.setattr(cli.InferenceServer, "run", lambda self: ran.append("gunicorn"))
    monkeypatch.delenv("INFERENCE_HTTP_SERVER", raising=False)
    assert cli.main(["--http-server", "granian"]) == 0
    assert ran == ["granian"]


def test_config_says_how_to_install_a_missing_granian(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the extra, the launcher names it instead of an ImportError."""
    monkeypatch.setitem(sys.modules, "granian", None)
    with pytest.raises(SystemExit, match=r"inference-server\[granian\]"):
        granian_conf.main()


def test_config_prepares_the_master_and_passes_the_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """The launcher gets bind, workers, keep-alive, drain time and log level from the settings."""
    calls: dict[str, Any] = {}
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    (tmp_path / "counter_1.db").write_bytes(b"stale")
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    monkeypatch.setenv("INFERENCE_KEEPALIVE", "7")
    monkeypatch.setattr(machinery, "serve", lambda target, **kw: calls.update(kw, target=target))
    monkeypatch.setattr(granian_conf.prefork, "map_body_buffers", lambda: True)
    granian_conf.main()
    assert calls == {
        "target": "inference_server.app:create_app",
        "bind": "0.0.0.0:5000",
        "workers": 3,
        "keepalive": 7,
        "graceful_timeout": 20,
        "log_level": "info",
    }
    assert not list(tmp_path.glob("*.db"))
