#!/usr/bin/env bash
# Build (once) the binaries of the local CI cluster from the Go module proxy, cached per version.
#
# Usage: build.sh [COMPONENT...]          build what is missing (default: all), print nothing
#        build.sh --print-bindir [COMPONENT]  only print a component's bin directory
#
# Components, each its own Go module so that each builds with exactly its upstream's
# dependency versions (a shared module would let MVS mix them):
#   kubernetes      go.mod here (gen_gomod.py): the Kubernetes server binaries, kube-proxy,
#                   kubectl, etcd; into $KUBE_BIN_CACHE (default $CACHE/kubernetes/<k8s>-etcd-<etcd>/bin)
#   coredns         coredns/go.mod + main.go (only the plugins the cluster uses); $CACHE/coredns/<v>/bin
#   metrics-server  metrics-server/go.mod (`go get -tool ...@vX`); $CACHE/metrics-server/<v>/bin
#   registry        registry/go.mod (`go get -tool .../distribution/v3/cmd/registry@vX`): CNCF
#                   Distribution, the OCI registry the cluster pulls from; $CACHE/registry/<v>/bin
# with CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/ml-model. A bin directory counts as complete only
# when its stamp exists and it holds every binary of the component's current list (so adding a
# binary to a list rebuilds an older cache). Versions come from the go.mod files; a bump is a
# go.mod change. GOMODCACHE/GOCACHE stay at Go's defaults so later builds are warm.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PATH="$PATH:/usr/local/go/bin"
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/ml-model
ALL_COMPONENTS=(kubernetes coredns metrics-server registry)

# gomod_version DIR MODULE: the version DIR/go.mod requires of MODULE.
gomod_version() { sed -nE "s#^\s*(require )?$2 (v[0-9][^ ]*)( // indirect)?\$#\2#p" "$1/go.mod"; }

# --- kubernetes (and etcd) ------------------------------------------------------------------
KUBE_VERSION=$(gomod_version "$HERE" k8s.io/kubernetes)
ETCD_VERSION=$(gomod_version "$HERE" go.etcd.io/etcd/server/v3)
KUBE_CMDS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubeadm kubectl)
kubernetes_bindir() { echo "${KUBE_BIN_CACHE:-$CACHE/kubernetes/$KUBE_VERSION-etcd-$ETCD_VERSION/bin}"; }
kubernetes_binaries() { echo "${KUBE_CMDS[*]} etcd etcdctl"; }
kubernetes_version() { echo "kubernetes=$KUBE_VERSION etcd=$ETCD_VERSION"; }
kubernetes_build() {
  local out=$1 release_time minor pkg ldflags=()
  # Version stamps, as upstream's hack/lib/version.sh sets them (kubectl version / pytest-kubernetes
  # version() read them). Release time from the module proxy makes the binaries reproducible.
  release_time=$(cd "$HERE" && go list -m -json k8s.io/kubernetes |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["Time"])')
  IFS=. read -r _ minor _ <<<"${KUBE_VERSION#v}"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=("-X $pkg.gitVersion=$KUBE_VERSION" "-X $pkg.gitMajor=1" "-X $pkg.gitMinor=$minor"
      "-X $pkg.gitTreeState=archive" "-X $pkg.buildDate=$release_time")
  done
  (cd "$HERE" &&
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w ${ldflags[*]}" -o "$out/" "${KUBE_CMDS[@]/#/k8s.io/kubernetes/cmd/}" &&
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3 &&
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/etcdctl" go.etcd.io/etcd/etcdctl/v3)
}

# --- coredns --------------------------------------------------------------------------------
COREDNS_VERSION=$(gomod_version "$HERE/coredns" github.com/coredns/coredns)
coredns_bindir() { echo "$CACHE/coredns/$COREDNS_VERSION/bin"; }
coredns_binaries() { echo coredns; }
coredns_version() { echo "coredns=$COREDNS_VERSION"; }
coredns_build() {
  # GitCommit is what upstream's Makefile stamps; the version itself is a constant in coremain.
  (cd "$HERE/coredns" && CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION" -o "$1/coredns" .)
}

# --- metrics-server -------------------------------------------------------------------------
METRICS_SERVER_VERSION=$(gomod_version "$HERE/metrics-server" sigs.k8s.io/metrics-server)
metrics-server_bindir() { echo "$CACHE/metrics-server/$METRICS_SERVER_VERSION/bin"; }
metrics-server_binaries() { echo metrics-server; }
metrics-server_version() { echo "metrics-server=$METRICS_SERVER_VERSION"; }
metrics-server_build() {
  # The stamp upstream's Makefile sets (metrics-server --version, /version).
  (cd "$HERE/metrics-server" && CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X k8s.io/client-go/pkg/version.gitVersion=$METRICS_SERVER_VERSION" \
    -o "$1/metrics-server" sigs.k8s.io/metrics-server/cmd/metrics-server)
}

# --- registry (CNCF Distribution) -----------------------------------------------------------
REGISTRY_VERSION=$(gomod_version "$HERE/registry" github.com/distribution/distribution/v3)
registry_bindir() { echo "$CACHE/registry/$REGISTRY_VERSION/bin"; }
registry_binaries() { echo registry; }
registry_version() { echo "registry=$REGISTRY_VERSION"; }
registry_build() {
  # The stamp upstream's Makefile sets (registry --version).
  (cd "$HERE/registry" && CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X github.com/distribution/distribution/v3/version.version=$REGISTRY_VERSION -X github.com/distribution/distribution/v3/version.mainpkg=github.com/distribution/distribution/v3" \
    -o "$1/registry" github.com/distribution/distribution/v3/cmd/registry)
}

# --------------------------------------------------------------------------------------------
complete() {
  local bin=$1 b && shift
  [[ -f $bin/.complete ]] || return 1
  for b in "$@"; do [[ -x $bin/$b ]] || return 1; done
}

build_component() {
  local c=$1 bin tmp start b
  bin=$("${c}_bindir")
  # shellcheck disable=SC2046  # word-split the binary list
  complete "$bin" $("${c}_binaries") && return 0
  command -v go >/dev/null || { echo "build.sh: Go is required (expected /usr/local/go/bin/go)" >&2; exit 1; }
  tmp="$bin.tmp.$$"
  trap 'rm -rf "$tmp"' EXIT
  rm -rf "$tmp" && mkdir -p "$tmp"
  start=$(date +%s)
  echo "build.sh: building $("${c}_version") into $bin" >&2
  "${c}_build" "$tmp"
  for b in $("${c}_binaries"); do [[ -x $tmp/$b ]] || { echo "build.sh: $c: $b missing" >&2; exit 1; }; done
  echo "$("${c}_version") binaries=$("${c}_binaries" | tr ' ' ,) built=$(date -u +%FT%TZ) seconds=$(($(date +%s) - start))" >"$tmp/.complete"
  rm -rf "$bin" && mkdir -p "$(dirname "$bin")" && mv "$tmp" "$bin"
  trap - EXIT
  echo "build.sh: $c done in $(($(date +%s) - start)) s" >&2
}

[[ -n $KUBE_VERSION && -n $ETCD_VERSION && -n $COREDNS_VERSION && -n $METRICS_SERVER_VERSION && -n $REGISTRY_VERSION ]] ||
  { echo "build.sh: cannot read versions from the go.mod files" >&2; exit 1; }
known() { [[ " ${ALL_COMPONENTS[*]} " == *" $1 "* ]] || { echo "build.sh: unknown component '$1' (${ALL_COMPONENTS[*]})" >&2; exit 2; }; }

if [[ ${1:-} == --print-bindir ]]; then
  known "${2:-kubernetes}"
  "${2:-kubernetes}_bindir"
  exit 0
fi
if [[ ${1:-} == -h || ${1:-} == --help ]]; then sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0; fi
for c in "${@:-${ALL_COMPONENTS[@]}}"; do known "$c"; build_component "$c"; done
