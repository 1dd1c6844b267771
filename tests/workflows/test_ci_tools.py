""".ci/run and the noxfile, read as data: no tool may reach CI through a hand-made PATH.

A bench tool installed by hand on one machine once hid a broken build step (issue 22): these
tests pin the rules that keep that from happening again. The fresh-machine run of .ci/run
itself is the proof that the rules are enough.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CI_RUN = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
NOXFILE = ast.parse((ROOT / "noxfile.py").read_text(encoding="utf-8"))
SYSTEM_DIRS = {"/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"}


def functions() -> dict[str, ast.FunctionDef]:
    return {node.name: node for node in NOXFILE.body if isinstance(node, ast.FunctionDef)}


def calls_in(node: ast.AST) -> list[ast.Call]:
    return [call for call in ast.walk(node) if isinstance(call, ast.Call)]


def is_go_install(call: ast.Call) -> bool:
    return any(isinstance(arg, ast.Constant) and arg.value == "install" for arg in call.args) and (
        bool(call.args) and isinstance(call.args[0], ast.Name) and call.args[0].id == "go"
    )


def test_ci_run_reduces_path_to_system_directories_and_its_own_venv() -> None:
    exports = re.findall(r'^export PATH="([^"]+)"$', CI_RUN, re.MULTILINE)
    assert exports, ".ci/run sets no PATH of its own"
    first = exports[0].split(":")
    assert first[0] == "$CI_VENV/bin"
    assert set(first[1:]) == SYSTEM_DIRS
    assert CI_RUN.index(exports[0]) < CI_RUN.index('\nstep "'), "PATH is reduced after a step ran"


def test_ci_run_checks_every_tool_origin_before_the_readme_command() -> None:
    readme_command = CI_RUN.index("python3 -m pip install -q nox uv && nox")
    checks = re.findall(r"^check_tools (.+)$", CI_RUN, re.MULTILINE)
    assert checks, ".ci/run checks no tool's origin"
    assert all(CI_RUN.index(f"check_tools {tools}") < readme_command for tools in checks)
    checked = {tool for tools in checks for tool in tools.split()}
    assert {"python3", "nox", "uv", "docker", "kubectl", "wrk", "go"} <= checked


def test_ci_run_prints_phase_times_and_the_total_even_when_it_fails() -> None:
    cleanup = CI_RUN[CI_RUN.index("cleanup() {") :]
    assert "report_times" in cleanup[: cleanup.index("\n}\n")]
    assert "total (" in CI_RUN


def test_every_go_install_goes_through_go_tool() -> None:
    owners = {name for name, body in functions().items() if any(map(is_go_install, calls_in(body)))}
    assert owners == {"go_tool"}


def which_calls(node: ast.AST) -> list[str]:
    """The string arguments of every `shutil.which(...)` below node."""
    return [
        call.args[0].value
        for call in calls_in(node)
        if isinstance(call.func, ast.Attribute)
        and call.func.attr == "which"
        and call.args
        and isinstance(call.args[0], ast.Constant)
    ]


def test_go_built_tools_are_never_looked_up_on_path() -> None:
    assert not {"vegeta", "kube-score", "actionlint", "crane", "cosign"} & set(which_calls(NOXFILE))


def test_promtool_comes_from_path_only_when_go_cannot_build_it() -> None:
    find_promtool = functions()["find_promtool"]
    no_go = [
        branch
        for branch in ast.walk(find_promtool)
        if isinstance(branch, ast.If) and "go_binary() is None" in ast.unparse(branch.test)
    ]
    assert which_calls(find_promtool) == ["promtool"]
    assert no_go
    assert which_calls(no_go[0]) == ["promtool"]


def test_go_tools_cache_is_absolute_and_outside_the_checkout() -> None:
    assignment = next(
        node
        for node in NOXFILE.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "GO_TOOLS_CACHE"
    )
    source = ast.unparse(assignment.value)
    assert source.endswith(".resolve()"), "GOBIN must be an absolute path"
    assert "cache_dir" not in source
    assert "ROOT" not in source
