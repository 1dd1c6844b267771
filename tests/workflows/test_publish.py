"""Publishing and the deploy gate without a registry, through stand-in programs.

tools/release/publish.py's decisions and tools/local-cluster/deploy.py --verify's refusals.
The real programs run in .ci/run (`nox -s publish`, then `nox -s delivery` against the CI
cluster's registry); these tests pin the rules that make a run of them trustworthy: the
image pushed is the image tested, the digest is signed before any moving tag names it, and
nothing unsigned or re-tagged is deployed.
"""

from __future__ import annotations

import importlib.util
import json
import re
import stat
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CI_RUN = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
TESTED = "sha256:" + "c" * 64
PUSHED = "sha256:" + "d" * 64
OTHER = "sha256:" + "e" * 64


def load(path: Path) -> ModuleType:
    """Import a tool script by path (they are programs, not packages)."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


publish = load(ROOT / "tools" / "release" / "publish.py")
deploy = load(ROOT / "tools" / "local-cluster" / "deploy.py")


# ------------------------------------------------------------------------------ tags
@pytest.mark.parametrize(
    ("ref", "tags"),
    [
        ("refs/heads/main", ["sha-0123abc", "latest"]),
        ("refs/heads/feature", ["sha-0123abc"]),
        ("refs/tags/v1.2.3", ["sha-0123abc", "1.2.3", "1.2", "1"]),
        ("refs/tags/v0.1.0", ["sha-0123abc", "0.1.0", "0.1"]),
        ("refs/tags/v2.0.0-rc.1", ["sha-0123abc", "2.0.0-rc.1"]),
    ],
)
def test_tags_follow_the_ref(ref: str, tags: list[str]) -> None:
    """The immutable sha tag first; latest only for main; semver only for release tags."""
    assert publish.tags_for(ref, "0123abcdef0123abcdef0123abcdef0123abcdef") == tags


@pytest.mark.parametrize(
    ("ref", "commit"), [("refs/tags/nightly", "0123abc"), ("refs/heads/main", "HEAD")]
)
def test_a_ref_or_commit_that_names_no_tag_is_refused(ref: str, commit: str) -> None:
    """A v* tag that is not semver, or a commit that is not a hash, stops the publication."""
    with pytest.raises(publish.PublishError):
        publish.tags_for(ref, commit)


def test_an_index_or_a_manifest_without_config_is_not_an_image() -> None:
    """Only a single image manifest has the config digest that identifies the tested image."""
    index = {"mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []}
    with pytest.raises(publish.PublishError, match="index"):
        publish.config_digest_of(index)
    with pytest.raises(publish.PublishError, match="no config"):
        publish.config_digest_of({"schemaVersion": 2})
    assert publish.config_digest_of({"config": {"digest": TESTED}}) == TESTED


# ------------------------------------------------------------------------- the steps
class FakePublisher:
    """Records what publish() asks of docker, crane and cosign; a registry in a dict."""

    def __init__(self, image_id: str = TESTED, pushed_config: str = TESTED) -> None:
        self.image_id_ = image_id
        self.pushed_config = pushed_config
        self.calls: list[tuple[str, ...]] = []
        self.tags: dict[str, str] = {}

    def image_id(self, image: str) -> str:  # noqa: D102 - as publish.Publisher
        self.calls.append(("inspect", image))
        return self.image_id_

    def push(self, image: str, target: str) -> None:  # noqa: D102 - as publish.Publisher
        self.calls.append(("push", image, target))
        self.tags[target] = PUSHED

    def digest(self, reference: str) -> str:  # noqa: D102 - as publish.Publisher
        return self.tags[reference]

    def manifest(self, reference: str) -> dict[str, Any]:  # noqa: D102 - as publish.Publisher
        self.calls.append(("manifest", reference))
        return {"config": {"digest": self.pushed_config}}

    def sign(self, reference: str, key: Path | None) -> None:  # noqa: D102 - as publish.Publisher
        self.calls.append(("sign", reference, str(key)))

    def tag(self, reference: str, tag: str) -> None:  # noqa: D102 - as publish.Publisher
        self.calls.append(("tag", reference, tag))
        repository, _, digest = reference.partition("@")
        self.tags[f"{repository}:{tag}"] = digest


def run_publish(fake: FakePublisher, **overrides: Any) -> Any:
    arguments: dict[str, Any] = {
        "image": "ml-model:pytest",
        "repository": "127.0.0.1:5001/team/app",
        "tags": ["sha-0123abc", "latest"],
        "key": Path("/keys/cosign.key"),
    }
    return publish.publish(fake, **(arguments | overrides))


def test_the_tested_image_is_pushed_checked_signed_then_tagged() -> None:
    """Push by the sha tag, read back, sign the digest, and only then add the moving tags."""
    fake = FakePublisher()
    published = run_publish(fake)
    pinned = f"127.0.0.1:5001/team/app@{PUSHED}"
    assert [call[0] for call in fake.calls] == ["inspect", "push", "manifest", "sign", "tag"]
    assert fake.calls[1] == ("push", "ml-model:pytest", "127.0.0.1:5001/team/app:sha-0123abc")
    assert fake.calls[3] == ("sign", pinned, "/keys/cosign.key")  # the digest, never a tag
    assert fake.calls[4] == ("tag", pinned, "latest")
    assert (published.digest, published.config_digest) == (PUSHED, TESTED)
    assert published.public_key == str(Path("/keys/cosign.pub").resolve())


def test_a_registry_that_holds_another_image_stops_before_signing() -> None:
    """A config digest other than the tested one fails the run; nothing is signed or tagged."""
    fake = FakePublisher(pushed_config=OTHER)
    with pytest.raises(publish.PublishError, match="not the tested image"):
        run_publish(fake)
    assert not [call for call in fake.calls if call[0] in {"sign", "tag"}]


def test_an_image_other_than_the_one_the_tests_ran_is_never_pushed() -> None:
    """--tested-config-digest: a local image that differs from it is refused before the push."""
    fake = FakePublisher()
    with pytest.raises(publish.PublishError, match="not the tested image"):
        run_publish(fake, tested_config_digest=OTHER)
    assert [call[0] for call in fake.calls] == ["inspect"]


def test_a_tag_that_resolves_elsewhere_fails_the_publication() -> None:
    """Every tag is read back; one that names another digest (a concurrent push) fails."""
    fake = FakePublisher()
    original_tag = fake.tag

    def racing_tag(reference: str, tag: str) -> None:
        original_tag(reference, tag)
        fake.tags[f"127.0.0.1:5001/team/app:{tag}"] = OTHER

    fake.tag = racing_tag  # type: ignore[method-assign]
    with pytest.raises(publish.PublishError, match="latest resolves to"):
        run_publish(fake)


# ------------------------------------------------------------------ deploy.py --verify
def stand_in(path: Path, script: str) -> str:
    """An executable stand-in for crane or cosign."""
    path.write_text(f"#!/bin/sh\n{script}\n", encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


@pytest.fixture
def registry(tmp_path: Path) -> dict[str, str]:
    """Stand-ins: crane resolving every tag to PUSHED, cosign accepting only PUSHED; both log."""
    log = tmp_path / "calls.log"
    crane = stand_in(tmp_path / "crane", f'echo "crane $*" >> {log}; echo {PUSHED}')
    cosign = stand_in(
        tmp_path / "cosign",
        f'echo "cosign $*" >> {log}\n'
        f'case "$*" in *@{PUSHED}*) exit 0;; esac\n'
        'echo "Error: no matching signatures" >&2; exit 1',
    )
    return {"crane": crane, "cosign": cosign, "log": str(log)}


def verify(image: str, registry: dict[str, str]) -> str:
    message: str = deploy.verify(
        image, Path("/keys/cosign.pub"), "127.0.0.1:5001", registry["crane"], registry["cosign"]
    )
    return message


def test_a_signed_digest_whose_tag_still_points_at_it_is_accepted(
    registry: dict[str, str],
) -> None:
    """Tag resolved and signature checked, both at the registry the cluster pulls from."""
    message = verify(f"team/app:1.2.3@{PUSHED}", registry)
    assert "signed by /keys/cosign.pub" in message
    calls = Path(registry["log"]).read_text(encoding="utf-8")
    assert "crane digest 127.0.0.1:5001/team/app:1.2.3" in calls
    signed = rf"cosign verify --key /keys/cosign.pub .* 127.0.0.1:5001/team/app@{PUSHED}"
    assert re.search(signed, calls)


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        ("team/app:1.2.3", "not pinned by digest"),
        (f"team/app:1.2.3@{OTHER}", "moved"),
        (f"team/app@{OTHER}", "no valid signature"),
    ],
)
def test_unpinned_moved_or_unsigned_images_are_refused(
    registry: dict[str, str], image: str, reason: str
) -> None:
    """Each way an image can differ from what was published is a refusal."""
    with pytest.raises(deploy.Refused, match=reason):
        verify(image, registry)


def test_a_refusal_applies_nothing(registry: dict[str, str], capsys: Any) -> None:
    """deploy.py exits 3 before reading the image or calling kubectl."""
    status = deploy.main([
        f"team/app@{OTHER}", "--verify", "/keys/cosign.pub", "--apply", "--kubectl", "/nonexistent",
        "--crane", registry["crane"], "--cosign", registry["cosign"],
    ])  # fmt: skip
    assert status == 3
    assert "REFUSED, nothing applied" in capsys.readouterr().err


def test_the_registry_option_keeps_the_repository_path() -> None:
    """Names with or without a host map onto the given registry's same repository."""
    assert deploy.in_registry("team/app", "127.0.0.1:5001") == "127.0.0.1:5001/team/app"
    assert deploy.in_registry("other.invalid/team/app", "r:1") == "r:1/team/app"
    assert deploy.in_registry("team/app", None) == "team/app"
    assert deploy.split_image(f"h:5000/team/app:v1@{PUSHED}") == ("h:5000/team/app", "v1", PUSHED)


# ----------------------------------------------------------------------------- .ci/run
def test_ci_publishes_after_the_readme_command_and_deploys_what_it_published() -> None:
    """.ci/run: README command, then publish to the cluster's registry, then delivery."""
    readme = CI_RUN.index("python3 -m pip install -q nox uv && nox\n")
    publish_at = CI_RUN.index("nox -s publish -- ")
    delivery_at = CI_RUN.index("nox -s delivery")
    assert readme < publish_at < delivery_at < CI_RUN.index("nox -s bench")
    command = CI_RUN[publish_at : CI_RUN.index("\n", publish_at)]
    assert "$E2E_REGISTRY/" in command
    assert "--generate-key" in command


def test_publish_tools_are_built_before_the_workflow_logs_in() -> None:
    """`nox -s publish -- prepare` (a Go build) runs before the login, not while logged in."""
    import yaml  # noqa: PLC0415

    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text("utf-8"))
    steps = workflow["jobs"]["publish"]["steps"]
    prepare = next(i for i, s in enumerate(steps) if s.get("run") == "nox -s publish -- prepare")
    login = next(i for i, s in enumerate(steps) if "login-action" in s.get("uses", ""))
    assert prepare < login
    summary = json.dumps(steps)
    assert "steps.publish.outputs.digest" in summary
