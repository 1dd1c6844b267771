"""The release gate of .github/workflows/ci.yml, read as data.

Nothing can run the workflow here, so these tests pin the properties that make it safe:
publish waits for every test job and runs only for pushes to main and v* tags, pull-request
jobs never see a secret, tokens are least-privilege, and every action is an immutable pin.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
import yaml

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "ci.yml"
TEST_JOBS = {"lint", "tests", "container", "e2e"}
SHA_PIN = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<comment>\s+#.*)?$")
VERSION_COMMENT = re.compile(r"^\s+# v\d+\.\d+\.\d+$")


@pytest.fixture(scope="module")
def text() -> str:
    return WORKFLOW.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def workflow(text: str) -> dict[str, Any]:
    document = yaml.safe_load(text)
    # YAML 1.1 reads the bare key `on` as the boolean True.
    document["on"] = document.pop(True, document.get("on"))
    return document


@pytest.fixture(scope="module")
def jobs(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return workflow["jobs"]


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps", []))


# ----------------------------------------------------------- a tiny expression evaluator
class _Expression:
    """Evaluates the subset of GitHub's expression syntax that job conditions use here.

    `==`, `!=`, `&&`, `||`, `!`, parentheses, string literals, `github.*` properties and
    startsWith/endsWith/contains. It walks a Python AST of the translated text; nothing is
    executed, and anything outside that subset raises.
    """

    FUNCTIONS: ClassVar[dict[str, Any]] = {
        "startsWith": lambda a, b: str(a).lower().startswith(str(b).lower()),
        "endsWith": lambda a, b: str(a).lower().endswith(str(b).lower()),
        "contains": lambda a, b: str(b).lower() in str(a).lower(),
    }

    def __init__(self, source: str) -> None:
        source = source.strip()
        if source.startswith("${{") and source.endswith("}}"):
            source = source[3:-2]
        python = source.replace("&&", " and ").replace("||", " or ")
        python = re.sub(r"!(?!=)", " not ", python)
        self.tree = ast.parse(python.strip(), mode="eval")

    def __call__(self, **github: str) -> bool:
        return bool(self._eval(self.tree.body, SimpleNamespace(**github)))

    def _eval(self, node: ast.AST, github: SimpleNamespace) -> Any:  # noqa: PLR0911 (one case each)
        match node:
            case ast.BoolOp(op=ast.And(), values=values):
                return all(self._eval(value, github) for value in values)
            case ast.BoolOp(op=ast.Or(), values=values):
                return any(self._eval(value, github) for value in values)
            case ast.UnaryOp(op=ast.Not(), operand=operand):
                return not self._eval(operand, github)
            case ast.Compare(left=left, ops=[op], comparators=[right]):
                a, b = self._eval(left, github), self._eval(right, github)
                if isinstance(op, ast.Eq):
                    return a == b
                if isinstance(op, ast.NotEq):
                    return a != b
            case ast.Call(func=ast.Name(id=name), args=args) if name in self.FUNCTIONS:
                return self.FUNCTIONS[name](*(self._eval(arg, github) for arg in args))
            case ast.Attribute(value=ast.Name(id="github"), attr=attr):
                return getattr(github, attr, "")
            case ast.Constant(value=value):
                return value
        msg = f"unsupported expression: {ast.dump(node)}"
        raise ValueError(msg)


EVENTS = {
    "pull request": {"event_name": "pull_request", "ref": "refs/pull/7/merge"},
    "pull request from main": {"event_name": "pull_request", "ref": "refs/heads/main"},
    "pull_request_target": {"event_name": "pull_request_target", "ref": "refs/heads/main"},
    "push to a feature branch": {"event_name": "push", "ref": "refs/heads/feature"},
    "push of a non-version tag": {"event_name": "push", "ref": "refs/tags/nightly"},
    "manual run on main": {"event_name": "workflow_dispatch", "ref": "refs/heads/main"},
    "push to main": {"event_name": "push", "ref": "refs/heads/main"},
    "push of tag v1.0.0": {"event_name": "push", "ref": "refs/tags/v1.0.0"},
    "push of tag v2.0.0": {"event_name": "push", "ref": "refs/tags/v2.0.0"},
}
PUBLISHES = {"push to main", "push of tag v1.0.0", "push of tag v2.0.0"}


def test_the_expression_evaluator_understands_what_it_is_given() -> None:
    """The evaluator itself: operators, functions, and a refusal of anything else."""
    condition = _Expression("${{ github.event_name == 'push' && !startsWith(github.ref, 'x') }}")
    assert condition(event_name="push", ref="refs/heads/main")
    assert not condition(event_name="push", ref="x1")
    assert not condition(event_name="pull_request", ref="refs/heads/main")
    with pytest.raises(ValueError, match="unsupported"):
        _Expression("github.event.number > 1")(event_name="push")


# ------------------------------------------------------------------------------ the gate
def test_triggers_are_push_to_main_and_tags_and_pull_requests(workflow: dict[str, Any]) -> None:
    """CI runs on pushes to main, v* tags and pull requests; never on a privileged trigger."""
    on = workflow["on"]
    assert set(on) == {"push", "pull_request"}
    assert on["push"]["branches"] == ["main"]
    assert on["push"]["tags"] == ["v*"]
    assert not {"pull_request_target", "workflow_run"} & set(on)


def test_publish_needs_every_test_job(jobs: dict[str, dict[str, Any]]) -> None:
    """Publish starts only after lint, tests, container and e2e have all succeeded."""
    assert set(jobs) >= TEST_JOBS | {"publish"}
    assert set(jobs["publish"]["needs"]) == TEST_JOBS
    assert "always()" not in str(jobs["publish"].get("if", ""))
    assert "continue-on-error" not in jobs["publish"]
    for name in TEST_JOBS:
        assert not jobs[name].get("continue-on-error"), f"{name} may fail without blocking publish"


@pytest.mark.parametrize("event", list(EVENTS))
def test_publish_runs_only_for_pushes_to_main_and_version_tags(
    jobs: dict[str, dict[str, Any]], event: str
) -> None:
    """The publish condition is true for push to main / v* tags and false for the rest."""
    condition = _Expression(jobs["publish"]["if"])
    assert condition(**EVENTS[event]) is (event in PUBLISHES)


def test_only_publish_references_secrets(jobs: dict[str, dict[str, Any]]) -> None:
    """Jobs that run for pull requests get no secret; publish is the only job that has any."""
    with_secrets = {name for name, job in jobs.items() if "secrets." in yaml.safe_dump(job)}
    assert with_secrets == {"publish"}
    assert all(job.get("secrets") != "inherit" for job in jobs.values())
    publish_secrets = set(re.findall(r"secrets\.(\w+)", yaml.safe_dump(jobs["publish"])))
    assert publish_secrets == {"DOCKERHUB_USERNAME", "DOCKERHUB_TOKEN"}


def test_token_permissions_are_least_privilege(
    workflow: dict[str, Any], jobs: dict[str, dict[str, Any]]
) -> None:
    """Top-level permissions are {}; each job names its own; only publish may write."""
    assert workflow["permissions"] == {}
    for name, job in jobs.items():
        assert "permissions" in job, f"{name} inherits the default token permissions"
        if name != "publish":
            assert job["permissions"] == {"contents": "read"}, name
    writes = {scope for scope, level in jobs["publish"]["permissions"].items() if level == "write"}
    assert writes == {"id-token", "attestations"}


def test_every_action_is_pinned_to_a_commit_with_its_release(text: str) -> None:
    """Every `uses:` is owner/repo@<40-hex commit> followed by a `# vX.Y.Z` comment."""
    pins = [match for line in text.splitlines() if (match := USES_LINE.match(line))]
    assert pins, "no uses: lines found"
    for pin in pins:
        assert SHA_PIN.match(pin["ref"]), f"not pinned to a full commit SHA: {pin['ref']}"
        assert pin["comment"], f"{pin['ref']} has no `# vX.Y.Z` comment"
        assert VERSION_COMMENT.match(pin["comment"]), f"{pin['ref']}: {pin['comment']}"


def test_the_line_scan_sees_every_parsed_action(text: str, jobs: dict[str, dict[str, Any]]) -> None:
    """The pin check reads raw lines (comments are lost in YAML); it must miss no `uses:`."""
    parsed = sorted(step["uses"] for job in jobs.values() for step in steps(job) if "uses" in step)
    scanned = sorted(m["ref"] for line in text.splitlines() if (m := USES_LINE.match(line)))
    assert parsed == scanned


def test_every_checkout_drops_the_token(jobs: dict[str, dict[str, Any]]) -> None:
    """actions/checkout never leaves the token in .git/config."""
    checkouts = [
        step for job in jobs.values() for step in steps(job)
        if step.get("uses", "").startswith("actions/checkout@")
    ]  # fmt: skip
    assert checkouts
    for step in checkouts:
        assert step.get("with", {}).get("persist-credentials") is False


def test_no_expression_is_expanded_inside_a_shell_script(jobs: dict[str, dict[str, Any]]) -> None:
    """Untrusted values reach `run:` through `env:`, never as `${{ }}` pasted into the script."""
    for name, job in jobs.items():
        for step in steps(job):
            assert "${{" not in step.get("run", ""), f"{name}: {step.get('name', step['run'])}"


def test_every_job_has_a_timeout(jobs: dict[str, dict[str, Any]]) -> None:
    """A hung job cannot hold a runner (or the publish queue) for the 6-hour default."""
    for name, job in jobs.items():
        assert 0 < int(job["timeout-minutes"]) <= 60, name


def test_pull_request_runs_are_superseded_and_publishes_are_not(
    workflow: dict[str, Any], jobs: dict[str, dict[str, Any]]
) -> None:
    """A new PR push cancels the old run; push runs get their own group; publish queues."""
    concurrency = workflow["concurrency"]
    assert "github.event.pull_request.number" in concurrency["group"]
    assert "github.run_id" in concurrency["group"]
    assert concurrency["cancel-in-progress"] is True
    assert jobs["publish"]["concurrency"]["cancel-in-progress"] is False


def test_the_image_is_built_once_and_publish_pushes_the_tested_one(
    jobs: dict[str, dict[str, Any]],
) -> None:
    """Only `container` builds; e2e and publish load its archive and check its config digest."""
    builders = {
        name for name, job in jobs.items() for step in steps(job)
        if step.get("uses", "").startswith("docker/build-push-action@")
        or re.search(r"docker (buildx )?build\b", step.get("run", ""))
    }  # fmt: skip
    assert builders == {"container"}
    build = next(s for s in steps(jobs["container"]) if "build-push-action" in s.get("uses", ""))
    assert build["with"]["load"] is True
    assert build["with"]["push"] is False
    for name in ("e2e", "publish"):
        job_text = yaml.safe_dump(jobs[name])
        assert "actions/download-artifact@" in job_text
        assert "docker load" in job_text
        assert "needs.container.outputs.config-digest" in job_text
    # Publishing itself is `nox -s publish` (tests/workflows/test_publish.py), given the
    # tested digest to hold the image to, signing keyless.
    (publishing,) = (s for s in steps(jobs["publish"]) if s.get("id") == "publish")
    assert publishing["run"].startswith("nox -s publish -- ")
    assert '--tested-config-digest "${TESTED_CONFIG_DIGEST}"' in publishing["run"]
    assert "--keyless" in publishing["run"]
    assert jobs["publish"]["env"]["TESTED_CONFIG_DIGEST"] == (
        "${{ needs.container.outputs.config-digest }}"
    )


def test_e2e_prints_pod_logs_and_events_when_it_fails(jobs: dict[str, dict[str, Any]]) -> None:
    """A failed e2e run leaves the cluster's events and the app's logs in the job log."""
    on_failure = [step for step in steps(jobs["e2e"]) if step.get("if") == "failure()"]
    assert len(on_failure) == 1
    script = on_failure[0]["run"]
    assert "kubectl get events -A" in script
    assert "kubectl logs" in script
    assert "app.kubernetes.io/name=ml-model" in script
    assert "--all-containers" in script
