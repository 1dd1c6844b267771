#!/usr/bin/env bash
# Build (once) Prometheus and promtool from the Go module proxy, cached per version.
#
# Usage: build-prometheus.sh [--print-bindir] [prometheus|promtool ...]
#   Builds the named commands (default: both) into $PROMETHEUS_BIN_CACHE (default
#   ${XDG_CACHE_HOME:-$HOME/.cache}/ml-model/prometheus/<module version>/bin) unless they are
#   there already; prints the directory. Used by cluster.sh (the e2e Prometheus) and by nox
#   (promtool for `promtool test rules` and `promtool check metrics`).
# Prometheus 3.x is published as module versions v0.3XX.Y (v0.316.0 = Prometheus 3.16.0). The
# web UI's assets are not in the module, so this Prometheus serves its HTTP API but no UI.
# Service discovery: Kubernetes, file and HTTP only (upstream's build tags): the other
# mechanisms compile every cloud provider's SDK, most of the build's time.
set -euo pipefail
export PATH="$PATH:/usr/local/go/bin"

PROMETHEUS_MODULE=github.com/prometheus/prometheus
PROMETHEUS_VERSION=v0.316.0
BUILD_TAGS=remove_all_sd,enable_kubernetes_sd
BIN=${PROMETHEUS_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ml-model/prometheus/$PROMETHEUS_VERSION-kubernetes-sd/bin}

if [[ ${1:-} == --print-bindir ]]; then echo "$BIN"; exit 0; fi
commands=("$@")
((${#commands[@]})) || commands=(prometheus promtool)
missing=()
for c in "${commands[@]}"; do
  [[ $c == prometheus || $c == promtool ]] || { echo "build-prometheus.sh: unknown command $c" >&2; exit 2; }
  [[ -x $BIN/$c ]] || missing+=("$PROMETHEUS_MODULE/cmd/$c@$PROMETHEUS_VERSION")
done
if ((${#missing[@]})); then
  command -v go >/dev/null || { echo "build-prometheus.sh: Go is required (expected /usr/local/go/bin/go)" >&2; exit 1; }
  echo "build-prometheus.sh: building ${missing[*]##*/cmd/} into $BIN (cold: several minutes on 2 cores)" >&2
  start=$(date +%s)
  # Into a temporary directory first: an interrupted build never leaves a half-written binary.
  TMP="$BIN.tmp.$$"
  trap 'rm -rf "$TMP"' EXIT
  mkdir -p "$TMP" "$BIN"
  GOBIN=$TMP CGO_ENABLED=0 go install -trimpath -tags "$BUILD_TAGS" "${missing[@]}"
  mv "$TMP"/* "$BIN/"
  echo "build-prometheus.sh: done in $(($(date +%s) - start)) s" >&2
fi
echo "$BIN"
