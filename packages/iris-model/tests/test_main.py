"""The iris-model command line: train, predict, info, verify."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from iris_model.__main__ import main
from iris_model.persistence import MODEL_FILE


def test_train_then_predict_verify_and_info(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The four commands work together on one model directory."""
    out = tmp_path / "model"
    assert main(["train", "--output", str(out)]) == 0
    assert "accuracy 0.9" in capsys.readouterr().out

    assert main(["predict", str(out), "5.1", "3.5", "1.4", "0.2"]) == 0
    assert capsys.readouterr().out.startswith("setosa (class 0)")

    assert main(["predict", str(out), "6.3", "3.3", "6.0", "2.5", "--proba", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["prediction"] == 2
    assert result["label"] == "virginica"
    assert set(result["probabilities"]) == {"setosa", "versicolor", "virginica"}

    assert main(["verify", str(out)]) == 0
    assert "3 golden pairs reproduced" in capsys.readouterr().out

    assert main(["info", str(out)]) == 0
    assert "LogisticRegression" in capsys.readouterr().out
    assert main(["info", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["artifact"]["file"] == MODEL_FILE


def test_info_shows_the_digest_that_verify_pins(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`info` prints the directory digest; `verify --digest` accepts it and refuses others."""
    main(["train", "-o", str(tmp_path)])
    capsys.readouterr()
    assert main(["info", str(tmp_path), "--json"]) == 0
    digest = json.loads(capsys.readouterr().out)["digest"]
    assert main(["info", str(tmp_path)]) == 0
    assert f"digest        {digest}" in capsys.readouterr().out
    assert main(["verify", str(tmp_path), "--digest", digest]) == 0
    assert digest in capsys.readouterr().out
    assert main(["verify", str(tmp_path), "--digest", "sha256:" + "0" * 64]) == 1
    assert "differs from the pinned" in capsys.readouterr().err


def test_train_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Train --json prints the evaluation and digest as JSON."""
    assert main(["train", "-o", str(tmp_path), "--seed", "7", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["sha256"]) == 64
    assert result["evaluation"]["n_test"] == 30


def test_domain_errors_exit_1_with_message_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A broken model directory exits 1 with one clear line on stderr, no traceback."""
    assert main(["verify", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("iris-model: error: ")
    assert "Traceback" not in captured.err


def test_tampered_model_fails_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Verify catches a modified model file."""
    main(["train", "-o", str(tmp_path)])
    path = tmp_path / MODEL_FILE
    path.write_bytes(path.read_bytes()[:-1] + b"\0")
    assert main(["verify", str(tmp_path)]) == 1
    assert "sha256" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["predict", "DIR", "1", "2", "3"],
        ["predict", "DIR", "1", "2", "3", "abc"],
        ["predict", "DIR", "1", "2", "3", "nan"],
        ["train"],
        ["frobnicate"],
    ],
    ids=["no-command", "three-numbers", "not-a-number", "nan", "no-output", "unknown"],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Bad usage exits 2 with argparse's message on stderr."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage: iris-model" in capsys.readouterr().err


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    """--help lists the commands; --version prints the version."""
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    help_text = capsys.readouterr().out
    for command in ("train", "predict", "info", "verify"):
        assert command in help_text
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("iris-model ")


def test_python_dash_m_runs_the_same_cli(tmp_path: Path) -> None:
    """Python -m iris_model is the same program, with the same exit codes."""
    done = subprocess.run(
        [sys.executable, "-m", "iris_model", "verify", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "iris-model: error:" in done.stderr
