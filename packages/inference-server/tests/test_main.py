"""The inference-server command: flags, environment, and the in-process Gunicorn app."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from flask import Flask

from inference_server import __main__ as cli
from inference_server.settings import flag_of, specs


def test_help_documents_the_options() -> None:
    """--help lists the conventional flags and their environment variables."""
    result = subprocess.run(
        [sys.executable, "-m", "inference_server", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    for name, spec, _default in specs():
        flag = flag_of(name, spec)
        if flag is None:
            assert spec.env == "INFERENCE_AUTH_TOKENS"  # secrets stay off command lines
            assert "--auth-tokens " not in result.stdout
            continue
        assert flag in result.stdout
        assert spec.env in result.stdout.replace("\n", "").replace(" ", "")


def test_flags_become_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Flags are exported for the config module and the workers, then Gunicorn runs."""
    ran: list[bool] = []
    monkeypatch.setattr(cli.InferenceServer, "run", lambda self: ran.append(True))
    status = cli.main(["--bind", "127.0.0.1:5999", "--workers", "3", "--model-dir", "/models/x"])
    assert status == 0
    assert ran == [True]
    assert os.environ["INFERENCE_BIND"] == "127.0.0.1:5999"
    assert os.environ["WEB_CONCURRENCY"] == "3"
    assert os.environ["INFERENCE_MODEL_DIR"] == "/models/x"
    assert "INFERENCE_THREADS" not in os.environ


def test_application_uses_the_config_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Gunicorn app takes its settings from inference_server.gunicorn_conf."""
    monkeypatch.setenv("INFERENCE_BIND", "127.0.0.1:5998")
    monkeypatch.setenv("INFERENCE_GRACEFUL_TIMEOUT", "20")
    application = cli.InferenceServer()
    cfg = application.cfg
    assert cfg.worker_class_str == "inference_server.http.worker.FairGeventWorker"
    assert cfg.graceful_timeout == 20
    assert cfg.control_socket_disable is True
    assert isinstance(application.load(), Flask)


@pytest.mark.parametrize(
    "argv", [["--no-such-flag"], ["--workers", "0"], ["--max-rows", "x"], ["--model-name", "a/b"]]
)
def test_bad_flag_is_a_usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown flag or a value its setting refuses exits 2 (argparse) before Gunicorn."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert "error" in capsys.readouterr().err
