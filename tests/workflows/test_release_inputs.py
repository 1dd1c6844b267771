"""What a release is built from, pinned and agreeing: version, base image, cluster, credentials.

Read as data (nothing here can run the workflow): the version reaches the image from git, the
base image and the CI cluster are pinned, the registry login never overlaps a third-party step,
and the production overlay names a released version.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
THIRD_PARTY_ALLOWED_WHILE_LOGGED_IN = ("docker/login-action@",)


@pytest.fixture(scope="module")
def jobs() -> dict[str, Any]:
    return dict(yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))["jobs"])


def test_no_third_party_step_runs_while_the_registry_login_is_live(jobs: dict[str, Any]) -> None:
    """Between each login and its `docker logout`, only this repository's own shell steps run."""
    logged_in = False
    logins = 0
    for step in jobs["publish"]["steps"]:
        uses = step.get("uses", "")
        if uses.startswith("docker/login-action@"):
            logged_in, logins = True, logins + 1
        elif "docker logout" in step.get("run", ""):
            assert step.get("if") == "always()", "a failed push must still log out"
            logged_in = False
        elif logged_in:
            assert not uses, f"{uses} runs while the Docker config holds credentials"
    assert logins >= 1
    assert not logged_in, "publish ends still logged in"


def test_the_last_push_is_followed_by_a_logout(jobs: dict[str, Any]) -> None:
    """Nothing pushes after the final logout (the publish session pushes and tags)."""
    steps = jobs["publish"]["steps"]
    pushes = [
        i for i, step in enumerate(steps)
        if "docker push" in step.get("run", "")
        or (step.get("run", "").startswith("nox -s publish") and "prepare" not in step["run"])
    ]  # fmt: skip
    logouts = [i for i, step in enumerate(steps) if "docker logout" in step.get("run", "")]
    assert pushes
    assert logouts
    assert max(logouts) > max(pushes)


def test_minikube_and_its_kubernetes_are_pinned_to_the_validated_minor(
    jobs: dict[str, Any],
) -> None:
    """The e2e cluster is the Kubernetes minor the manifests are validated against."""
    (step,) = (s for s in jobs["e2e"]["steps"] if "setup-minikube@" in s.get("uses", ""))
    assert re.fullmatch(r"\d+\.\d+\.\d+", str(step["with"]["minikube-version"]))
    kubernetes = str(step["with"]["kubernetes-version"])
    assert re.fullmatch(r"v\d+\.\d+\.\d+", kubernetes)
    noxfile = (ROOT / "noxfile.py").read_text(encoding="utf-8")
    schema = re.search(r'^K8S_SCHEMA_VERSION = "(\d+\.\d+)\.\d+"', noxfile, re.MULTILINE)
    assert schema, "noxfile.py has no K8S_SCHEMA_VERSION"
    assert kubernetes.removeprefix("v").startswith(f"{schema[1]}.")


def test_the_image_version_comes_from_git(jobs: dict[str, Any]) -> None:
    """The container job sees the tags, derives the version as hatch-vcs does, and uses it."""
    steps = jobs["container"]["steps"]
    (checkout,) = (s for s in steps if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0  # a shallow clone has no tags
    (version,) = (s for s in steps if s.get("id") == "version")
    assert "nox --non-interactive -s version" in version["run"]
    assert "GITHUB_REF_NAME#v" in version["run"]  # a tag push must build that version
    (meta,) = (s for s in steps if s.get("id") == "meta")
    (build,) = (s for s in steps if s.get("id") == "build")
    output = "${{ steps.version.outputs.version }}"
    assert f"org.opencontainers.image.version={output}" in meta["with"]["labels"]
    assert f"VERSION={output}" in build["with"]["build-args"]


def test_the_dockerfile_base_image_is_pinned_by_tag_and_digest() -> None:
    """The default base names its tag (what it is) and its index digest (what is pulled)."""
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile, re.MULTILINE)
    assert base, "no default base image"
    assert re.fullmatch(r"python:3\.\d+-slim@sha256:[0-9a-f]{64}", base[1])
    assert "To bump it" in dockerfile


def test_the_production_overlay_names_the_latest_released_version() -> None:
    """Its image tag is the newest release in CHANGELOG.md, spelt as CI tags it (no `v`)."""
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$", changelog, re.MULTILINE)
    assert releases, "CHANGELOG.md lists no release"
    overlay = ROOT / "deploy" / "k8s" / "overlays" / "production" / "kustomization.yaml"
    (image,) = yaml.safe_load(overlay.read_text(encoding="utf-8"))["images"]
    assert image["newTag"] == releases[0]


def test_every_pre_commit_hook_is_pinned_and_none_is_missing() -> None:
    """The lint hooks are all there, and each tool has an exact version in one place."""
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    required = {"ruff", "ruff-format", "mypy", "hadolint", "actionlint", "zizmor", "shellcheck"}
    assert required <= set(hooks)
    for repo in config["repos"]:
        assert repo["repo"] == "local", "hooks come from package registries, not clones"
    for hook_id, hook in hooks.items():
        if hook["language"] == "system":
            continue  # runs the environment's own tool (mypy needs the packages' deps)
        pins = hook.get("additional_dependencies", [])
        assert pins, f"{hook_id} installs nothing pinned"
        for pin in pins:
            assert re.fullmatch(r"[\w.-]+==[\w.]+|[\w./-]+@v\d+\.\d+\.\d+", pin), pin
