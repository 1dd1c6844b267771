"""The iris-model command line: train, predict, info, verify."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from iris_model.__main__ import EXIT_CODES, main
from iris_model.persistence import MODEL_FILE


def test_train_then_predict_verify_and_info(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The four commands work together on one model directory."""
    out = tmp_path / "model"
    assert main(["train", "--output", str(out), "--model-version", "2026.12.1"]) == 0
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
    info = capsys.readouterr().out
    assert "LogisticRegression" in info
    assert "model version 2026.12.1" in info
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
        ["train"],
        ["frobnicate"],
        ["train", "-o", "x", "--estimator", "svm"],
    ],
    ids=["no-command", "no-output", "unknown", "unknown-estimator"],
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


IRIS_CSV_HEADER = "sepal length (cm),sepal width (cm),petal length (cm),petal width (cm)"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "model"
    assert main(["train", "-o", str(out), "--cv-folds", "0"]) == 0
    return out


def test_train_on_a_csv_with_hyperparameters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--data/--target train on your CSV; hyperparameters and the version reach the manifest."""
    rows = ["a,b,kind"] + [
        f"{i % 7},{(i * 3) % 5},{'up' if i % 7 > 3 else 'down'}" for i in range(60)
    ]
    data = tmp_path / "data.csv"
    data.write_text("\n".join(rows) + "\n")
    out = tmp_path / "m"
    argv = ["train", "--data", str(data), "--target", "kind", "-o", str(out), "--C", "0.5",
            "--max-iter", "300", "--param", "tol=0.001", "--model-version", "v1"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    manifest = json.loads((out / "model.json").read_text())
    assert manifest["feature_names"] == ["a", "b"]
    assert manifest["classes"] == ["down", "up"]
    assert manifest["model_version"] == "v1"
    assert manifest["params"]["logisticregression__C"] == 0.5  # the pipeline's classifier
    assert manifest["params"]["logisticregression__tol"] == 0.001
    capsys.readouterr()
    # The training file still has the target column: refused by name, as unknown.
    assert main(["predict", str(out), "--input", str(data)]) == 3
    assert "unknown column 'kind'" in capsys.readouterr().err
    features = tmp_path / "features.csv"
    features.write_text("b,a\n1,6\n1,0\n")  # columns in another order: matched by name
    assert main(["predict", str(out), "--input", str(features)]) == 0
    assert capsys.readouterr().out.splitlines() == ["prediction,label", "1,up", "0,down"]


def test_predict_csv_and_stdin(
    model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--input FILE.csv or - (stdin), as CSV or JSON lines, with optional probabilities."""
    data = tmp_path / "in.csv"
    data.write_text(IRIS_CSV_HEADER + "\n5.1,3.5,1.4,0.2\n6.3,3.3,6.0,2.5\n")
    assert main(["predict", str(model_dir), "--input", str(data), "--proba"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "prediction,label,p_setosa,p_versicolor,p_virginica"
    assert lines[1].startswith("0,setosa,0.9")
    assert lines[2].startswith("2,virginica,")
    monkeypatch.setattr("sys.stdin", io.StringIO(data.read_text()))
    assert main(["predict", str(model_dir), "-i", "-", "--format", "jsonl"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert records == [
        {"prediction": 0, "label": "setosa"},
        {"prediction": 2, "label": "virginica"},
    ]


def test_train_refuses_to_overwrite_without_force(
    model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An existing model is kept unless --force is given."""
    before = (model_dir / "model.json").read_text()
    assert main(["train", "-o", str(model_dir)]) == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--force" in err
    assert (model_dir / "model.json").read_text() == before


BAD_CSVS = {
    "missing-column": (
        "sepal length (cm),sepal width (cm),petal length (cm)\n1,2,3\n",
        "missing column 'petal width (cm)'",
    ),
    "unknown-column": (IRIS_CSV_HEADER + ",id\n1,2,3,4,7\n", "unknown column 'id'"),
    "not-a-number": (
        IRIS_CSV_HEADER + "\n1,2,x,4\n",
        "line 2, column 'petal length (cm)': not a number: 'x'",
    ),
    "nan": (IRIS_CSV_HEADER + "\n1,2,3,nan\n", "not a finite number"),
    "ragged": (IRIS_CSV_HEADER + "\n1,2,3,4\n1,2\n", "line 3: 2 values for 4 columns"),
    "empty": ("", "empty file"),
    "header-only": (IRIS_CSV_HEADER + "\n", "no rows after the header"),
    "duplicate": ("a,a\n1,2\n", "duplicate column 'a'"),
}


@pytest.mark.parametrize(("text", "fragment"), BAD_CSVS.values(), ids=BAD_CSVS.keys())
def test_bad_csv_input_is_one_line_exit_3(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, fragment: str
) -> None:
    """Every malformed CSV is one line on stderr, exit 3, never a traceback."""
    path = tmp_path / "bad.csv"
    path.write_text(text)
    assert main(["predict", str(model_dir), "--input", str(path)]) == 3
    err = capsys.readouterr().err
    assert err.startswith("iris-model: error: ")
    assert err.count("\n") == 1
    assert fragment in err


ERROR_CASES = {
    "missing-input": (["predict", "{model}", "--input", "{tmp}/nope.csv"], 3, "no such file"),
    "input-is-dir": (["predict", "{model}", "--input", "{tmp}"], 3, "is a directory"),
    "no-model": (["predict", "{tmp}/none", "1", "2", "3", "4"], 1, "no such file"),
    "wrong-count": (["predict", "{model}", "1", "2", "3"], 2, "expected 4 values"),
    "not-a-number": (["predict", "{model}", "1", "2", "3", "abc"], 2, "not a number: 'abc'"),
    "nan": (["predict", "{model}", "1", "2", "3", "nan"], 2, "not a finite number: 'nan'"),
    "no-row": (["predict", "{model}"], 2, "give one row"),
    "both": (["predict", "{model}", "1", "2", "3", "4", "-i", "x.csv"], 2, "not both"),
    "test-size-0": (["train", "-o", "{tmp}/t", "--test-size", "0"], 3, "test_size must be between"),
    "folds-1": (["train", "-o", "{tmp}/t", "--cv-folds", "1"], 3, "cv_folds"),
    "output-is-file": (["train", "-o", "{tmp}/file"], 1, "is not a directory"),
    "data-no-target": (["train", "-o", "{tmp}/t", "--data", "{tmp}/d.csv"], 2, "--target"),
    "target-no-data": (["train", "-o", "{tmp}/t", "--target", "y"], 2, "--data"),
    "unknown-target": (
        ["train", "-o", "{tmp}/t", "--data", "{tmp}/d.csv", "--target", "zz"],
        3,
        "no column 'zz'",
    ),
    "bad-param": (["train", "-o", "{tmp}/t", "--param", "oops"], 2, "NAME=VALUE"),
    "unknown-param": (
        ["train", "-o", "{tmp}/t", "--param", "gamma=1"],
        3,
        "invalid hyperparameter",
    ),
    "negative-C": (["train", "-o", "{tmp}/t", "--C", "-1"], 3, "could not be fitted"),
}


@pytest.mark.parametrize(("argv", "code", "fragment"), ERROR_CASES.values(), ids=ERROR_CASES.keys())
def test_every_error_is_one_line_with_its_exit_code(  # noqa: PLR0917 - pytest parameters
    model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    code: int,
    fragment: str,
) -> None:
    """Each documented error: one line on stderr, the documented exit code, no traceback."""
    (tmp_path / "file").write_text("")
    (tmp_path / "d.csv").write_text("a,y\n1,0\n2,1\n")
    args = [a.format(model=model_dir, tmp=tmp_path) for a in argv]
    assert main(args) == code
    err = capsys.readouterr().err
    assert err.startswith("iris-model: error: "), err
    assert err.count("\n") == 1, err
    assert fragment in err
    assert "Traceback" not in err


def test_exit_codes_are_documented(capsys: pytest.CaptureFixture[str]) -> None:
    """--help's epilog lists every exit code, and so does the package README."""
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    help_text = capsys.readouterr().out
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for code, meaning in EXIT_CODES.items():
        assert f"  {code}  {meaning}" in help_text
        assert f"| {code} | {meaning} |" in readme


def test_allowed_version_mismatch_warns_on_one_line(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--allow-version-mismatch loads with a one-line warning; without it, exit 1."""
    copy = Path(shutil.copytree(model_dir, tmp_path / "m"))
    manifest = json.loads((copy / "model.json").read_text())
    manifest["versions"]["scikit-learn"] = "1.0.0"
    (copy / "model.json").write_text(json.dumps(manifest))
    assert main(["verify", str(copy)]) == 1
    assert "--allow-version-mismatch" in capsys.readouterr().err
    assert main(["verify", str(copy), "--allow-version-mismatch"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("iris-model: warning: ")
    assert err.count("\n") == 1


HOUSES = Path(__file__).parents[1] / "examples" / "houses.csv"


@pytest.mark.parametrize("estimator", ["logistic", "random-forest", "hist-gradient-boosting"])
def test_train_on_mixed_csv_with_each_estimator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], estimator: str
) -> None:
    """Text, whole numbers, millions and empty cells: a default pipeline, no warnings."""
    out = tmp_path / "m"
    argv = ["train", "--data", str(HOUSES), "--target", "sale", "-o", str(out),
            "--estimator", estimator, "--cv-folds", "2"]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "warning" not in captured.err.lower(), captured.err
    assert float(captured.out.split()[1]) > 0.75  # accuracy
    manifest = json.loads((out / "model.json").read_text())
    types = {c["name"]: (c["type"], c["nullable"]) for c in manifest["schema"]["columns"]}
    assert types == {
        "region": ("string", False), "kind": ("string", False), "price": ("number", True),
        "area": ("number", True), "rooms": ("integer", False), "garden": ("boolean", False),
    }  # fmt: skip


def test_predict_reads_text_columns_from_csv_json_lines_and_argv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """CSV cells and argv values are read as each column's type; JSON lines as they are."""
    out = tmp_path / "m"
    assert main(["train", "--data", str(HOUSES), "--target", "sale", "-o", str(out)]) == 0
    capsys.readouterr()
    rows = tmp_path / "rows.csv"
    rows.write_text(
        "garden,rooms,area,price,kind,region\ntrue,3,,2500000,villa,north\nfalse,1,30,,flat,east\n"
    )
    assert main(["predict", str(out), "--input", str(rows)]) == 0
    from_csv = capsys.readouterr().out.splitlines()[1:]
    lines = tmp_path / "rows.jsonl"
    lines.write_text(
        '{"region": "north", "kind": "villa", "price": 2500000, "area": null, "rooms": 3,'
        ' "garden": true}\n'
        '{"region": "east", "kind": "flat", "price": null, "area": 30, "rooms": 1,'
        ' "garden": false}\n'
    )
    assert main(["predict", str(out), "--input", str(lines)]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == from_csv
    assert main(["predict", str(out), "north", "villa", "2500000", "", "3", "true"]) == 0
    assert capsys.readouterr().out.split()[0] == from_csv[0].split(",")[1]
    bad = tmp_path / "bad.csv"
    bad.write_text("garden,rooms,area,price,kind,region\nmaybe,3,1,2,villa,north\n")
    assert main(["predict", str(out), "--input", str(bad)]) == 3
    assert "line 2, column 'garden': expected true or false, got 'maybe'" in capsys.readouterr().err
    assert main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "price: number (nullable)" in info
    assert "rooms: integer" in info
