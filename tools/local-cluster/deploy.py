#!/usr/bin/env python3
"""Render (and optionally apply) an overlay for one locally built image, naming its model.

    deploy.py ml-model:v2                          # print overlays/local for ml-model:v2
    deploy.py ml-model:v2 --apply                  # ... and `kubectl apply` it
    deploy.py ml-model:dev --overlay deploy/k8s/overlays/minikube | kubectl apply -f -
    deploy.py kiranrajsg/ml-model:1.2.3@sha256:... --overlay deploy/k8s/overlays/production \
        --verify cosign.pub --apply                # a published image, verified first

The image is the one place a user sets: the overlay in git keeps its default tag, and this
renders a copy with `images:` pointing at IMAGE (in a temporary kustomization next to
nothing in the repository). It also records on the Deployment what it deploys:

- pod template annotations `ml-model/model-version` and `ml-model/model-sha256`, read from
  the model manifest inside the image (`iris-model info --json /opt/model`; its sha256
  cannot be an image label, as LABEL values are fixed before the model is trained), and the
  label `ml-model/model-version` for `kubectl get pods -L ml-model/model-version`. When the
  overlay serves a model from a volume (INFERENCE_MODEL_DIR set, components/model-volume),
  the annotations say so and carry the pinned digest (INFERENCE_MODEL_DIGEST) if any,
  never the image's model;
- `kubernetes.io/change-cause` on the Deployment (`--change-cause`, default: image and
  model), which `kubectl rollout history` shows for each revision.

`--verify PUBLIC_KEY` deploys only what was published: before anything is rendered or
applied, the image must be pinned by digest, its tag (if it names one) must still resolve to
that digest in the registry (a tag that moved is refused), and cosign must find a signature
of the digest made with the key's private half. `--registry HOST[:PORT]` reads the image from
that host instead of the one its name implies, and renders it there (same repository, tag and
digest): the CI cluster's registry is 127.0.0.1:5001 (tools/local-cluster).

Needs docker (to read the image), kubectl (kustomize) and PyYAML (Debian: python3-yaml);
with --verify also crane and cosign (`nox -s publish` builds both; $CRANE, $COSIGN).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

try:
    import yaml
except ImportError:  # pragma: no cover - depends on the host
    sys.exit("deploy.py needs PyYAML: apt-get install python3-yaml (or pip install pyyaml)")

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OVERLAY = ROOT / "deploy" / "k8s" / "overlays" / "local"
IMAGE_MODEL_DIR = "/opt/model"
CONTAINER = "ml-model"
VERSION_KEY = "ml-model/model-version"
SHA256_KEY = "ml-model/model-sha256"
SOURCE_KEY = "ml-model/model-source"
CHANGE_CAUSE = "kubernetes.io/change-cause"
# A label value: at most 63 characters, alphanumerics and -_. inside.
LABEL_VALUE = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?")


def run(*args: str, stdin: str | None = None) -> str:
    """Run a command, return its stdout; exit with its stderr when it fails."""
    result = subprocess.run(args, input=stdin, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        sys.exit(f"deploy.py: {' '.join(args[:3])} ... failed: {result.stderr.strip()}")
    return result.stdout


DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


class Refused(Exception):  # noqa: N818 - a verdict, not an error of the tool
    """--verify found the image unfit to deploy; nothing was applied."""


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """`name[:tag][@digest]` -> (name, tag, digest), minding ports (`host:5000/name:tag`)."""
    image, _, digest = image.partition("@")
    if digest and not DIGEST.fullmatch(digest):
        sys.exit(f"deploy.py: {digest!r} is not a sha256 digest")
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:
        return image, None, digest or None
    return name, tag, digest or None


def in_registry(name: str, registry: str | None) -> str:
    """The repository `name` as read from `registry` (a mirror of its own registry), if given."""
    if not registry:
        return name
    first, _, rest = name.partition("/")
    has_host = rest and ("." in first or ":" in first or first == "localhost")
    return f"{registry}/{rest if has_host else name}"


def verify(image: str, public_key: Path, registry: str | None, crane: str, cosign: str) -> str:
    """Refuse an image that is not pinned, whose tag moved, or that the key did not sign."""
    name, tag, digest = split_image(image)
    if digest is None:
        raise Refused(f"{image} is not pinned by digest (NAME[:TAG]@sha256:...)")
    repository = in_registry(name, registry)
    if tag:
        resolved = run_or_refuse(crane, "digest", f"{repository}:{tag}").strip()
        if resolved != digest:
            raise Refused(f"tag {name}:{tag} moved: it resolves to {resolved}, not {digest}")
    signed = subprocess.run(  # noqa: S603
        [cosign, "verify", "--key", str(public_key), "--insecure-ignore-tlog=true",
         f"{repository}@{digest}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if signed.returncode != 0:
        reason = signed.stderr.strip().splitlines()[-1:] or ["cosign verify failed"]
        raise Refused(f"{name}@{digest} has no valid signature by {public_key}: {reason[0]}")
    return f"{name}{':' + tag if tag else ''}@{digest}: signed by {public_key}" + (
        f", tag {tag} still on it" if tag else ""
    )


def run_or_refuse(*args: str) -> str:
    """Run a registry query; a failure is a refusal (the image cannot be shown to be safe)."""
    result = subprocess.run(args, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise Refused(f"{' '.join(args[:3])} failed: {result.stderr.strip()}")
    return result.stdout


def image_model(image: str) -> dict[str, str]:
    """Version and sha256 of the model baked into `image` (runs it once, no network)."""
    output = run(
        "docker", "run", "--rm", "--network", "none", "--entrypoint", "iris-model",
        image, "info", "--json", IMAGE_MODEL_DIR,
    )  # fmt: skip
    manifest = json.loads(output)
    return {
        "version": str(manifest.get("model_version") or "unknown"),
        "sha256": str(manifest["artifact"]["sha256"]),
        "source": "image",
    }


def render(overlay: Path, image: str, namespace: str | None, kubectl: str) -> list[dict[str, Any]]:
    """`kubectl kustomize` of `overlay` with its image (and namespace) replaced."""
    name, tag, digest = split_image(image)
    # The name the overlay gives the image (production: its registry's repository) is the
    # one to replace.
    (current,) = {c["image"] for c in containers(run(kubectl, "kustomize", str(overlay)))}
    replacement = {"name": split_image(current)[0], "newName": name, "newTag": tag or "latest"}
    if digest:
        replacement["digest"] = digest
        if not tag:
            del replacement["newTag"]
    with tempfile.TemporaryDirectory(prefix="ml-model-deploy-") as directory:
        kustomization: dict[str, Any] = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            # kustomize refuses absolute paths
            "resources": [os.path.relpath(overlay.resolve(), directory)],
            "images": [replacement],
        }
        if namespace:
            kustomization["namespace"] = namespace
        Path(directory, "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
        rendered = run(kubectl, "kustomize", directory)
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def containers(rendered: str) -> list[dict[str, Any]]:
    """The server containers of the rendered Deployment."""
    (deployment,) = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    return [c for c in pod["containers"] if c["name"] == CONTAINER]


def env_of(container: dict[str, Any]) -> dict[str, str]:
    """The container's literal environment variables."""
    return {item["name"]: item["value"] for item in container.get("env", []) if "value" in item}


def annotate(
    objects: list[dict[str, Any]], image: str, model: dict[str, str], cause: str | None
) -> str:
    """Record the served model on the pod template and the change-cause; return the cause."""
    (deployment,) = [obj for obj in objects if obj["kind"] == "Deployment"]
    template = deployment["spec"]["template"]
    (container,) = [c for c in template["spec"]["containers"] if c["name"] == CONTAINER]
    env = env_of(container)
    if env.get("INFERENCE_MODEL_DIR", IMAGE_MODEL_DIR) != IMAGE_MODEL_DIR:
        # A mounted model: the image's own is not what the pods serve.
        model = {
            "version": "unknown",
            "sha256": env.get("INFERENCE_MODEL_DIGEST") or "unpinned",
            "source": "volume",
        }
    annotations = template["metadata"].setdefault("annotations", {})
    annotations[VERSION_KEY] = model["version"]
    annotations[SHA256_KEY] = model["sha256"]
    annotations[SOURCE_KEY] = model["source"]
    labels = template["metadata"].setdefault("labels", {})
    if LABEL_VALUE.fullmatch(model["version"]):
        labels[VERSION_KEY] = model["version"]
    cause = cause or (
        f"{image}: model {model['version']} (sha256 {model['sha256'][:12]}, {model['source']})"
    )
    deployment["metadata"].setdefault("annotations", {})[CHANGE_CAUSE] = cause
    return cause


def main(argv: list[str] | None = None) -> int:
    """Run the command line."""
    parser = argparse.ArgumentParser(
        prog="deploy.py",
        description="Render an overlay for IMAGE, recording the model it serves; optionally apply.",
    )
    parser.add_argument("image", metavar="IMAGE", help="a local Docker image, e.g. ml-model:v2")
    parser.add_argument(
        "--overlay",
        type=Path,
        default=DEFAULT_OVERLAY,
        help="kustomize directory (default: %(default)s)",
    )
    parser.add_argument("--namespace", help="deploy into this namespace instead of the overlay's")
    parser.add_argument(
        "--change-cause", help="kubernetes.io/change-cause (default: image and model)"
    )
    parser.add_argument("--apply", action="store_true", help="kubectl apply the result")
    parser.add_argument(
        "--verify",
        type=Path,
        metavar="PUBLIC_KEY",
        help="refuse IMAGE unless pinned by digest, its tag still on it, and signed by this key",
    )
    parser.add_argument(
        "--registry", metavar="HOST[:PORT]", help="read the image's repository from this registry"
    )
    parser.add_argument("--crane", default=os.environ.get("CRANE", "crane"), help="crane binary")
    parser.add_argument(
        "--cosign", default=os.environ.get("COSIGN", "cosign"), help="cosign binary"
    )
    parser.add_argument(
        "--kubectl", default="kubectl", help="kubectl binary (default: %(default)s)"
    )
    args = parser.parse_args(argv)

    if args.verify:
        try:
            verdict = verify(args.image, args.verify, args.registry, args.crane, args.cosign)
        except Refused as refusal:
            print(f"deploy.py: REFUSED, nothing applied: {refusal}", file=sys.stderr)
            return 3
        print(f"verified {verdict}", file=sys.stderr)
    name, tag, digest = split_image(args.image)
    # The model is read by running the image: by digest from where the registry serves it.
    model = image_model(
        in_registry(name, args.registry) + (f"@{digest}" if digest else f":{tag or 'latest'}")
    )
    # With --registry the pods pull from that registry: the same repository, tag and digest.
    deployed = (
        in_registry(name, args.registry)
        + (f":{tag}" if tag else "")
        + (f"@{digest}" if digest else "")
    )
    objects = render(args.overlay, deployed, args.namespace, args.kubectl)
    cause = annotate(objects, args.image, model, args.change_cause)
    manifest = yaml.safe_dump_all(objects, sort_keys=False)
    if not args.apply:
        sys.stdout.write(manifest)
        return 0
    print(f"deploying {cause}", file=sys.stderr)
    # Server-side apply: an unchanged object is a no-op, and the PodDisruptionBudget (whose
    # selector's strategic-merge strategy is "replace") is not re-sent as "configured".
    # --force-conflicts: this tool owns the image, even after a `kubectl set image`.
    sys.stdout.write(
        run(args.kubectl, "apply", "--server-side", "--force-conflicts",
            "--field-manager", "ml-model-deploy", "-f", "-", stdin=manifest)
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
