#!/usr/bin/env python3
"""Publish the tested image: push it, prove the registry holds it, sign its digest, tag it.

    publish.py IMAGE REPOSITORY --crane PATH --cosign PATH
               (--keyless | --key FILE | --generate-key DIR)
               [--ref REF] [--commit SHA] [--tested-config-digest sha256:...] [--json FILE]

The one implementation of publishing, run by `nox -s publish` (which builds crane and cosign):
the workflow's publish job runs it for Docker Hub with keyless signing, .ci/run for the CI
cluster's registry with a key pair made for the run. IMAGE is the tested image in the local
Docker daemon; REPOSITORY is where it goes (`[HOST[:PORT]/]NAMESPACE/NAME`, no host: Docker
Hub). In order, each step failing the run:

1. The tested image's config digest (its image ID: it covers the config and every layer) is
   read from the daemon; when the caller knows the digest the tests saw, they must agree.
2. `docker push REPOSITORY:sha-<commit>`: the immutable tag first, so the moving tags never
   name anything unverified.
3. The manifest is read back from the registry; its config digest must be the tested one,
   proof that the registry holds exactly the tested image and not a rebuild.
4. cosign signs the pushed manifest digest (never a tag).
5. The moving tags (`latest` for the default branch; 1.2.3, 1.2 and 1 for a tag v1.2.3) are
   added to that digest inside the registry (`crane tag`: nothing is pushed twice), and each
   is read back.
6. The digest is printed, and written as JSON (`--json`) for the deploy step.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
# A release tag as the workflow's `on.push.tags: ["v*"]` sees it, semver-shaped.
RELEASE_TAG = re.compile(
    r"v(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)(?P<pre>-[0-9A-Za-z.-]+)?"
)
INDEX_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}


class PublishError(Exception):
    """A step of the publication failed; the message says which and why."""


@dataclass(frozen=True)
class Published:
    """What a publication produced: the JSON that `--json` writes."""

    repository: str
    digest: str
    config_digest: str
    tested_image: str
    tags: list[str]
    public_key: str | None  # None: signed keyless


def tags_for(ref: str, commit: str, default_branch: str = "main") -> list[str]:
    """The image tags of a git ref: `sha-<commit>` first, then the moving ones.

    The default branch adds `latest`; a tag v1.2.3 adds 1.2.3, 1.2 and 1 (a pre-release only
    its own version, and a 0.x release no bare `0`), as docker/metadata-action's semver
    patterns did. A tag never moves `latest`: a release of an old commit must not move it back.
    """
    if not re.fullmatch(r"[0-9a-f]{7,40}", commit):
        raise PublishError(f"not a commit hash: {commit!r}")
    tags = [f"sha-{commit[:7]}"]
    if ref == f"refs/heads/{default_branch}":
        tags.append("latest")
    elif ref.startswith("refs/tags/"):
        release = RELEASE_TAG.fullmatch(ref.removeprefix("refs/tags/"))
        if release is None:
            raise PublishError(f"{ref}: a release tag is vMAJOR.MINOR.PATCH[-PRERELEASE]")
        major, minor, patch, pre = release.group("major", "minor", "patch", "pre")
        tags.append(f"{major}.{minor}.{patch}{pre or ''}")
        if not pre:
            tags.append(f"{major}.{minor}")
            if major != "0":
                tags.append(major)
    return tags


def config_digest_of(manifest: dict[str, object]) -> str:
    """The config digest an image manifest names (a single-platform image, as pushed)."""
    if manifest.get("mediaType") in INDEX_TYPES or "manifests" in manifest:
        raise PublishError("the registry returned an index, not the single image that was pushed")
    config = manifest.get("config")
    digest = config.get("digest") if isinstance(config, dict) else None
    if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
        raise PublishError(f"the manifest names no config digest: {json.dumps(manifest)[:300]}")
    return digest


def check_same_image(tested: str, pushed: str) -> None:
    """Fail unless the registry's config digest is the tested image's."""
    print(f"tested config digest: {tested}")
    print(f"pushed config digest: {pushed}")
    if pushed != tested:
        raise PublishError(
            f"the registry holds config {pushed}, the tests ran {tested}: not the tested image"
        )


class Publisher:
    """The external programs one publication drives: docker, crane, cosign."""

    def __init__(self, crane: str, cosign: str, docker: str = "docker") -> None:
        self.crane, self.cosign, self.docker = crane, cosign, docker

    def run(self, *args: str, env: dict[str, str] | None = None) -> str:
        """Run a program; return its stdout, or fail with its stderr."""
        print("+ " + " ".join(args), flush=True)
        result = subprocess.run(  # noqa: S603 - fixed programs, arguments from this script
            args, capture_output=True, text=True, check=False, env={**os.environ, **(env or {})}
        )
        if result.returncode != 0:
            raise PublishError(f"{Path(args[0]).name} {args[1]} failed: {result.stderr.strip()}")
        return result.stdout

    def image_id(self, image: str) -> str:
        """The local image's config digest (Docker's image ID)."""
        digest = self.run(self.docker, "image", "inspect", "--format", "{{.Id}}", image).strip()
        if not DIGEST.fullmatch(digest):
            raise PublishError(f"{image}: unexpected image ID {digest!r}")
        return digest

    def push(self, image: str, target: str) -> None:
        """Tag the local image as `target` and push it."""
        self.run(self.docker, "tag", image, target)
        self.run(self.docker, "push", target)

    def digest(self, reference: str) -> str:
        """The manifest digest a tag (or digest) resolves to in the registry."""
        digest = self.run(self.crane, "digest", reference).strip()
        if not DIGEST.fullmatch(digest):
            raise PublishError(f"{reference}: unexpected digest {digest!r}")
        return digest

    def manifest(self, reference: str) -> dict[str, object]:
        """The manifest the registry serves for `reference`."""
        return dict(json.loads(self.run(self.crane, "manifest", reference)))

    def generate_key(self, directory: Path) -> Path:
        """A cosign key pair for this run in `directory` (kept if there); return the key."""
        key = directory / "cosign.key"
        if not key.is_file():
            directory.mkdir(parents=True, exist_ok=True)
            prefix = str(directory / "cosign")
            self.run(self.cosign, "generate-key-pair", "--output-key-prefix", prefix,
                     env={"COSIGN_PASSWORD": os.environ.get("COSIGN_PASSWORD", "")})  # fmt: skip
        return key

    def sign(self, reference: str, key: Path | None) -> None:
        """Sign a digest reference: with a key (no transparency log), else keyless (OIDC)."""
        if key is None:
            self.run(self.cosign, "sign", "--yes", reference)
            return
        env = {"COSIGN_PASSWORD": os.environ.get("COSIGN_PASSWORD", "")}
        self.run(self.cosign, "sign", "--yes", "--key", str(key), "--tlog-upload=false",
                 reference, env=env)  # fmt: skip

    def tag(self, reference: str, tag: str) -> None:
        """Point `tag` at the manifest `reference` names, inside the registry."""
        self.run(self.crane, "tag", reference, tag)


def publish(
    publisher: Publisher,
    *,
    image: str,
    repository: str,
    tags: list[str],
    key: Path | None,
    tested_config_digest: str | None = None,
) -> Published:
    """Push, check, sign and tag (module docstring); return what was published."""
    config = publisher.image_id(image)
    if tested_config_digest and tested_config_digest != config:
        raise PublishError(
            f"{image} is {config}, but the tests ran {tested_config_digest}: not the tested image"
        )
    first = f"{repository}:{tags[0]}"
    publisher.push(image, first)
    digest = publisher.digest(first)
    pinned = f"{repository}@{digest}"
    check_same_image(config, config_digest_of(publisher.manifest(pinned)))
    publisher.sign(pinned, key)
    for tag in tags[1:]:
        publisher.tag(pinned, tag)
    for tag in tags:
        if (moved := publisher.digest(f"{repository}:{tag}")) != digest:
            raise PublishError(f"{repository}:{tag} resolves to {moved}, not {digest}")
    public_key = str(key.with_suffix(".pub").resolve()) if key else None
    return Published(repository, digest, config, image, tags, public_key)


def git(*args: str) -> str:
    """A git query in this checkout."""
    command = ["git", *args]
    result = subprocess.run(command, capture_output=True, text=True, check=True)  # noqa: S603
    return result.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    """Run the command line."""
    parser = argparse.ArgumentParser(prog="publish.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("image", metavar="IMAGE", help="the tested image in the Docker daemon")
    parser.add_argument("repository", metavar="REPOSITORY", help="[HOST[:PORT]/]NAMESPACE/NAME")
    parser.add_argument("--crane", required=True, help="the crane binary")
    parser.add_argument("--cosign", required=True, help="the cosign binary")
    signing = parser.add_mutually_exclusive_group(required=True)
    signing.add_argument("--keyless", action="store_true", help="sign with the CI's OIDC identity")
    signing.add_argument("--key", type=Path, help="sign with this cosign key (COSIGN_PASSWORD)")
    signing.add_argument(
        "--generate-key", type=Path, metavar="DIR", help="make a key pair in DIR and sign with it"
    )
    parser.add_argument("--ref", help="the git ref (default: $GITHUB_REF, else the branch)")
    parser.add_argument("--commit", help="the commit (default: $GITHUB_SHA, else HEAD)")
    parser.add_argument("--tested-config-digest", help="fail unless IMAGE has this config digest")
    parser.add_argument("--json", type=Path, help="write what was published to this file")
    args = parser.parse_args(argv)

    branch = f"refs/heads/{git('branch', '--show-current')}" if not args.ref else ""
    ref = args.ref or os.environ.get("GITHUB_REF") or branch
    commit = args.commit or os.environ.get("GITHUB_SHA") or git("rev-parse", "HEAD")
    publisher = Publisher(args.crane, args.cosign)
    try:
        key = publisher.generate_key(args.generate_key) if args.generate_key else args.key
        published = publish(
            publisher,
            image=args.image,
            repository=args.repository,
            tags=tags_for(ref, commit),
            key=key,
            tested_config_digest=args.tested_config_digest,
        )
    except PublishError as error:
        print(f"publish: {error}", file=sys.stderr)
        return 1
    if args.json:
        args.json.write_text(json.dumps(asdict(published), indent=2) + "\n", encoding="utf-8")
    if output := os.environ.get("GITHUB_OUTPUT"):
        with Path(output).open("a", encoding="utf-8") as stream:
            stream.write(f"digest={published.digest}\ntags={' '.join(published.tags)}\n")
    print(f"published {published.repository}@{published.digest}")
    print(f"  config {published.config_digest} = the tested image {published.tested_image}")
    signer = f"the key {published.public_key}" if published.public_key else "keyless (OIDC)"
    print(f"  tags {', '.join(published.tags)}; signed {signer}")
    print(published.digest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
