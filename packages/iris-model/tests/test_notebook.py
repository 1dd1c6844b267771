"""The committed example notebook is executed and runs headless without an error."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

EXAMPLES = Path(__file__).parents[1] / "examples"
NOTEBOOK = EXAMPLES / "walkthrough.ipynb"
TABULAR = EXAMPLES / "tabular.ipynb"


def _code_cells(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def test_committed_notebook_is_executed_and_error_free() -> None:
    """The committed copy shows its outputs (it was run), and none of them is an error."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    cells = _code_cells(notebook)
    assert all(cell.execution_count for cell in cells), "commit the notebook executed"
    outputs = [output for cell in cells for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    assert any("image/png" in output.get("data", {}) for output in outputs), "plots missing"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("path", "data"),
    [(NOTEBOOK, []), (TABULAR, [EXAMPLES / "houses.csv"])],
    ids=["walkthrough", "tabular"],
)
def test_notebook_executes_headless(path: Path, data: list[Path], tmp_path: Path) -> None:
    """Every cell runs in a fresh kernel (Agg backend, no display), beside the files it reads."""
    for file in data:
        shutil.copy(file, tmp_path)
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    outputs = [output for cell in _code_cells(notebook) for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]


def test_tabular_notebook_is_executed_and_shows_the_schema() -> None:
    """The mixed-type notebook was run: its schema and named errors are in its outputs."""
    notebook = nbformat.read(TABULAR, as_version=4)
    cells = _code_cells(notebook)
    assert all(cell.execution_count for cell in cells), "commit the notebook executed"
    text = "".join(
        output.get("text", "") + output.get("data", {}).get("text/plain", "")
        for cell in cells
        for output in cell.outputs
    )
    assert "price: number (nullable)" in text
    assert "kind: category ['flat', 'house', 'villa']" in text
    assert "row 0, column 'rooms': expected a whole number, got 2.5" in text
    assert not [o for cell in cells for o in cell.outputs if o.output_type == "error"]
