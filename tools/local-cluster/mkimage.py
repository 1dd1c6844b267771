#!/usr/bin/env python3
"""Write a one-layer container image as a `docker save`-format tarball, from host files only.

No registry and no Docker daemon are needed: the result is imported with
`ctr -n k8s.io images import FILE` (or `docker load`). The tarball is byte-for-byte
reproducible (fixed mtimes, uid/gid 0, sorted entries).

Example (the pod sandbox "pause" image, from Debian's static catatonit):
  mkimage.py -o pause.tar --tag localhost/ml-model/pause:catatonit \
      --add /usr/bin/catatonit:/pause --entrypoint '["/pause", "-P"]'
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import tarfile
from pathlib import PurePosixPath


def tar_bytes(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    """Serialise members as an uncompressed tar archive."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def entry(
    name: str, kind: bytes, mode: int, data: bytes | None = None, link: str = ""
) -> tuple[tarfile.TarInfo, bytes | None]:
    """One tar member owned by root with a fixed mtime."""
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime, info.uid, info.gid = kind, mode, 0, 0, 0
    info.linkname = link
    if data is not None:
        info.size = len(data)
    return info, data


def build_layer(adds: list[str], symlinks: list[str], dirs: list[str]) -> bytes:
    """The image's single layer: files, symlinks, directories and their parents."""
    files: dict[str, tuple[bytes | None, str]] = {}  # path -> (data, link target)
    for spec in adds:
        src, _, dest = spec.partition(":")
        with open(src, "rb") as fh:
            files[dest.lstrip("/")] = (fh.read(), "")
    for spec in symlinks:
        dest, _, target = spec.partition(":")
        files[dest.lstrip("/")] = (None, target)
    parents = {
        str(p)
        for path in [*files, *(d.strip("/") for d in dirs)]
        for p in PurePosixPath(path).parents
        if str(p) != "."
    }
    parents |= {d.strip("/") for d in dirs}
    members = [entry(d + "/", tarfile.DIRTYPE, 0o755) for d in sorted(parents)]
    for path in sorted(files):
        data, link = files[path]
        if link:
            members.append(entry(path, tarfile.SYMTYPE, 0o777, link=link))
        else:
            members.append(entry(path, tarfile.REGTYPE, 0o755, data))
    return tar_bytes(members)


def main() -> None:
    """Parse arguments and write the image tarball."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-o", "--output", required=True, help="tarball to write")
    parser.add_argument("--tag", required=True, help="image name:tag recorded in the tarball")
    parser.add_argument(
        "--add",
        action="append",
        default=[],
        metavar="SRC:DEST",
        help="host file to copy (mode 0755)",
    )
    parser.add_argument(
        "--symlink", action="append", default=[], metavar="DEST:TARGET", help="symlink to create"
    )
    parser.add_argument(
        "--dir", action="append", default=[], metavar="DEST", help="empty directory to create"
    )
    parser.add_argument("--entrypoint", type=json.loads, default=None, help="JSON list")
    parser.add_argument("--cmd", type=json.loads, default=None, help="JSON list")
    parser.add_argument("--user", default="", help="e.g. 65535:65535")
    args = parser.parse_args()

    layer = build_layer(args.add, args.symlink, args.dir)
    diff_id = hashlib.sha256(layer).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": "1970-01-01T00:00:00Z",
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "Entrypoint": args.entrypoint,
                "Cmd": args.cmd,
                "User": args.user,
            },
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
            "history": [
                {"created": "1970-01-01T00:00:00Z", "created_by": "tools/local-cluster/mkimage.py"}
            ],
        },
        sort_keys=True,
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps(
        [{"Config": config_name, "RepoTags": [args.tag], "Layers": [f"{diff_id}/layer.tar"]}]
    ).encode()
    archive = tar_bytes(
        [
            entry(f"{diff_id}/", tarfile.DIRTYPE, 0o755),
            entry(f"{diff_id}/layer.tar", tarfile.REGTYPE, 0o644, layer),
            entry(config_name, tarfile.REGTYPE, 0o644, config),
            entry("manifest.json", tarfile.REGTYPE, 0o644, manifest),
        ]
    )
    with open(args.output, "wb") as fh:
        fh.write(archive)


if __name__ == "__main__":
    main()
