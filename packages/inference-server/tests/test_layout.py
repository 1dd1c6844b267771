"""The package's layout holds: the HTTP machinery knows no model, the docs name real files."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import inference_server.http

HTTP = Path(inference_server.http.__file__).parent
ROOT = Path(__file__).resolve().parents[3]
CONTRIBUTING = ROOT / "CONTRIBUTING.md"


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (lazy imports in functions included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: relative import"
            found.add(node.module or "")
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("path", sorted(HTTP.glob("*.py")), ids=lambda p: p.name)
def test_the_http_machinery_imports_nothing_of_the_model(path: Path) -> None:
    """``inference_server.http`` imports neither ``iris_model`` nor the ML-facing modules."""
    for module in _imports(path):
        assert not module.startswith("iris_model"), f"{path.name} imports {module}"
        if module.startswith("inference_server"):
            assert module.startswith("inference_server.http"), f"{path.name} imports {module}"


def test_the_scan_sees_lazy_imports(tmp_path: Path) -> None:
    """The scan above finds an import inside a function (it could not fail otherwise)."""
    module = tmp_path / "lazy.py"
    module.write_text("def f():\n    from iris_model import train\n")
    assert "iris_model.train" in _imports(module)


def _table_paths() -> list[Path]:
    """The files in backquotes in the "Edit" column of CONTRIBUTING's "To change X" table.

    A path with a slash is from the repository's root; a bare file name (``seed.py``) is in
    the last folder the same cell named, or at the root.
    """
    text = CONTRIBUTING.read_text(encoding="utf-8")
    table = text.split("## To change X, edit Y", 1)[1].split("\n## ", 1)[0]
    cells = [line.split("|")[2] for line in table.splitlines() if line.startswith("| ")]
    paths: list[Path] = []
    for cell in cells[1:]:  # not the header
        folder = ROOT
        for name in re.findall(r"`([^`\s]+)`", cell):
            if "/" in name:
                path = ROOT / name.split("*")[0]
                folder = path if name.endswith("/") else path.parent
                paths.append(path)
            elif re.fullmatch(r"\.?[\w.-]+\.\w+", name):
                paths.append(folder / name if (folder / name).exists() else ROOT / name)
    return paths


def test_contributing_table_names_files_that_exist() -> None:
    """Every file or folder CONTRIBUTING's table says to edit exists (moves update the table)."""
    paths = _table_paths()
    assert len(paths) >= 20
    assert ROOT / "packages/inference-server/src/inference_server/http/pipeline.py" in paths
    missing = [str(path.relative_to(ROOT)) for path in paths if not path.exists()]
    assert missing == []
