#!/usr/bin/env bash
# Build a Python base image from Debian packages, for machines that cannot pull
# the official python:3.12-slim image (air-gapped CI, no registry access).
#
#   tools/container/build-base-image.sh [--force] [TAG]    (default TAG: local/python:3.11-bookworm)
#
# debootstrap --variant=minbase bookworm + python3/python3-venv, slimmed, then
# `docker import`ed as a one-layer image. Skipped when TAG already exists unless
# --force (or BASE_IMAGE_FORCE=1). The Debian mirror is the one this machine's apt
# sources use (override with DEBIAN_MIRROR). Needs root, debootstrap and a Docker daemon.
set -euo pipefail

force="${BASE_IMAGE_FORCE:-0}"
if [[ "${1:-}" == "--force" ]]; then force=1; shift; fi
tag="${1:-local/python:3.11-bookworm}"
suite="${DEBIAN_SUITE:-bookworm}"

if [[ "$force" != 1 ]] && docker image inspect "$tag" >/dev/null 2>&1; then
    echo "base image $tag already exists (use --force to rebuild)"
    exit 0
fi

command -v debootstrap >/dev/null || {
    echo "debootstrap is missing: apt-get install -y debootstrap" >&2
    exit 1
}

# The Debian mirror from apt's own configuration (deb822 .sources or one-line lists).
mirror="${DEBIAN_MIRROR:-}"
if [[ -z "$mirror" ]]; then
    mirror="$(
        {
            awk '/^URIs:/ {print $2}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true
            awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; break}}' \
                /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true
        } | grep -E '/debian/?$' | head -n 1 || true
    )"
fi
[[ -n "$mirror" ]] || {
    echo "no Debian mirror found in apt sources; set DEBIAN_MIRROR" >&2
    exit 1
}

rootfs="$(mktemp -d /tmp/base-rootfs.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT
echo "debootstrap $suite from the apt mirror into $rootfs (about 1.5 min)"
start=$SECONDS
debootstrap --variant=minbase --include=python3,python3-venv,python-is-python3 \
    "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
    tail -n 30 "$rootfs.log" >&2
    exit 1
}
rm -f "$rootfs.log"

# Slim: package caches, docs, man pages, locales; nothing machine-specific.
chroot "$rootfs" apt-get clean
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/log/* \
    "$rootfs"/usr/share/man "$rootfs"/usr/share/info "$rootfs"/usr/share/lintian
find "$rootfs/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
find "$rootfs/usr/lib/python3.11" -depth -type d -name __pycache__ -exec rm -rf {} +
rm -f "$rootfs/etc/hostname" "$rootfs/etc/resolv.conf"
: >"$rootfs/etc/machine-id"
find "$rootfs/dev" -mindepth 1 -delete
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
EOF

tar --numeric-owner --xattrs -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    --message "debootstrap --variant=minbase $suite + python3, python3-venv" \
    - "$tag" >/dev/null
echo "built $tag in $((SECONDS - start)) s: $(docker image inspect -f '{{.Size}}' "$tag") bytes"
