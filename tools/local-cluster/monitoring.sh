#!/usr/bin/env bash
# Prometheus for the local CI cluster: runs on the host next to the control plane, finds the
# ml-model pods through the Kubernetes API (the admin kubeconfig) and scrapes their pod IPs on
# the node's bridge. cluster.sh calls `up` at the end of its own `up` and `down` first in its
# `down`; the process is recorded and stopped by PID like every other component.
#
# Usage: monitoring.sh up|down|status|url
#
# It runs the shipped monitoring (deploy/monitoring/prometheus): the scrape job with
# `kubeconfig_file` added and a 5 s interval, and the rules with every `for:` shortened to 10 s
# so the e2e suite sees an alert fire within seconds of the fault it causes. Prometheus listens
# on 127.0.0.1:$ML_MODEL_PROMETHEUS_PORT (default 9090) only.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=cluster.sh
source "$HERE/cluster.sh"  # STATE, LOGS, PIDS and start/stop/alive/log/die/wait_for

ROOT=$(cd "$HERE/../.." && pwd)
PROMETHEUS_PORT=${ML_MODEL_PROMETHEUS_PORT:-9090}
PROMETHEUS_DIR=$STATE/prometheus
SHIPPED=$ROOT/deploy/monitoring/prometheus

prometheus_config() {
  mkdir -p "$PROMETHEUS_DIR/data"
  sed -E 's/^(\s+for: ).*/\110s/' "$SHIPPED/ml-model.rules.yaml" >"$PROMETHEUS_DIR/ml-model.rules.yaml"
  {
    cat <<YAML
global:
  scrape_interval: 5s
  evaluation_interval: 5s
rule_files: [ml-model.rules.yaml]
YAML
    # The shipped job, pointed at this cluster's API server from outside it.
    sed -E -e "s#^(      - role: pod)\$#\1\n        kubeconfig_file: $STATE/admin.conf#" \
      -e 's/^(\s+scrape_interval: ).*/\15s/' -e 's/^(\s+scrape_timeout: ).*/\14s/' \
      "$SHIPPED/scrape-config.yaml"
  } >"$PROMETHEUS_DIR/prometheus.yml"
  grep -q "kubeconfig_file: $STATE/admin.conf" "$PROMETHEUS_DIR/prometheus.yml" ||
    die "could not point the scrape job at $STATE/admin.conf"
}

cmd_monitoring_up() {
  need_root
  local bin
  alive prometheus && { log "prometheus already running"; return 0; }
  ! ss -Hltn "sport = :$PROMETHEUS_PORT" | grep -q . ||
    die "TCP port $PROMETHEUS_PORT is in use (set ML_MODEL_PROMETHEUS_PORT)"
  bin=$("$HERE/build-prometheus.sh" prometheus promtool)
  prometheus_config
  "$bin/promtool" check config "$PROMETHEUS_DIR/prometheus.yml" >"$LOGS/promtool.log" 2>&1 ||
    die "promtool check config failed: $(cat "$LOGS/promtool.log")"
  log "prometheus on 127.0.0.1:$PROMETHEUS_PORT"
  start prometheus "$bin/prometheus" --config.file "$PROMETHEUS_DIR/prometheus.yml" \
    --storage.tsdb.path "$PROMETHEUS_DIR/data" --storage.tsdb.retention.time 1d \
    --web.listen-address "127.0.0.1:$PROMETHEUS_PORT"
  wait_for "prometheus /-/ready" 60 curl -fsS "http://127.0.0.1:$PROMETHEUS_PORT/-/ready"
}

cmd_monitoring_down() {
  [[ -d $PIDS ]] || return 0
  stop prometheus
}

cmd_monitoring_status() {
  if alive prometheus; then printf '%-24s running  PID %s  http://127.0.0.1:%s\n' prometheus "$(cat "$PIDS/prometheus.pid")" "$PROMETHEUS_PORT"
  else printf '%-24s STOPPED\n' prometheus; return 3; fi
}

case ${1:-} in
  up) cmd_monitoring_up ;;
  down) cmd_monitoring_down ;;
  status) cmd_monitoring_status ;;
  url) echo "http://127.0.0.1:$PROMETHEUS_PORT" ;;
  *) echo "Usage: ${0##*/} up|down|status|url" >&2; exit 2 ;;
esac
