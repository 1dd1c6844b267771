#!/usr/bin/env bash
# A real single-node Kubernetes for CI on a machine with no container registry and no systemd.
#
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd, kubelet and
# kube-proxy run as plain background processes (as upstream's hack/local-up-cluster.sh does), all
# state under one directory; CoreDNS and metrics-server run as Deployments in kube-system from
# images built here. Kubernetes, etcd, CoreDNS and metrics-server are built once from the Go
# module proxy (build.sh, cached per version); containerd, runc, CNI plugins, nftables and
# catatonit (the pod sandbox image) come from Debian.
# An OCI registry (CNCF Distribution, built the same way) listens on the node's loopback;
# containerd pulls from it over plain HTTP by its own name (certs.d/<host:port>/hosts.toml), and
# deploy.py --registry renders images there (127.0.0.1:5001/kiranrajsg/ml-model:TAG@sha256:...).
# Developers use minikube/kind instead; this exists because those cannot start here.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATE=${ML_MODEL_CLUSTER_DIR:-/tmp/ml-model-cluster}
NODE_NAME=${ML_MODEL_CLUSTER_NODE:-ml-model-node}
API_PORT=${ML_MODEL_CLUSTER_API_PORT:-6443}
# The registry: loopback only, so only this host pushes to it and only this node pulls from it.
REGISTRY_PORT=${ML_MODEL_CLUSTER_REGISTRY_PORT:-5001}
REGISTRY=127.0.0.1:$REGISTRY_PORT
# Private ranges used only on this host: the pod bridge (its gateway is also the node IP) and
# the Service range (virtual: kube-proxy's nftables rules give it meaning; routed onto the
# bridge so that nothing addressed to it can leave the host).
POD_CIDR=10.244.0.0/24
NODE_IP=10.244.0.1
SERVICE_CIDR=10.96.0.0/16
DNS_IP=10.96.0.10
CLUSTER_DOMAIN=cluster.local
BRIDGE=kbr0
PAUSE_IMAGE=localhost/ml-model/pause:catatonit
DEBIAN_PACKAGES=(containerd runc containernetworking-plugins catatonit iptables nftables iproute2 util-linux curl python3)
# Host processes, started in this order by start_<name>, each recorded by PID.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler registry containerd kubelet kube-proxy)
# In-cluster Deployments (kube-system), applied in this order by addon_<name> once the node is
# Ready, then waited for; status_<name> reports each.
ADDONS=(coredns metrics-server)

SOCK=$STATE/containerd/containerd.sock
PKI=$STATE/pki
LOGS=$STATE/logs
PIDS=$STATE/pids

usage() {
  cat <<EOF
Usage: ${0##*/} COMMAND

Commands:
  up                 build/reuse binaries, install Debian packages if absent, start the cluster,
                     wait for the node to be Ready, start Prometheus on 127.0.0.1 (monitoring.sh);
                     prints the environment to use (see env)
  down               stop every process 'up' started (by PID), its containers, mounts and
                     bridge; delete the state directory
  status             component PIDs, add-on Deployments and 'kubectl get nodes'
  kubeconfig         print the admin kubeconfig path
  env                print shell exports: KUBECONFIG, E2E_KUBECONFIG, E2E_CONTAINERD_SOCKET,
                     E2E_REGISTRY (the registry on 127.0.0.1 that the node pulls published images from) and
                     PATH (puts kubectl 1.35 first: /usr/bin/kubectl 1.32 is outside the skew)
  load-image IMAGE.. import Docker images into the cluster's containerd (docker save | ctr import);
                     an argument that is a *.tar file is imported as a saved image archive
  deploy IMAGE [OVERLAY]
                     load-image IMAGE, then apply OVERLAY (default deploy/k8s/overlays/local) with
                     that image, the model it serves on the pods and a change-cause (deploy.py)
  build              only build (or find cached) the binaries (build.sh)
  smoke              deploy a busybox httpd Deployment+Service (image built from Debian's
                     busybox-static, imported locally) and fetch it through the Service's
                     ClusterIP from the node

Environment: ML_MODEL_CLUSTER_DIR (state, default /tmp/ml-model-cluster), ML_MODEL_CLUSTER_NODE
(node name, default ml-model-node), ML_MODEL_CLUSTER_API_PORT (default 6443),
ML_MODEL_CLUSTER_REGISTRY_PORT (the registry on 127.0.0.1, default 5001), KUBE_BIN_CACHE
(binary cache, default \${XDG_CACHE_HOME:-\$HOME/.cache}/ml-model/kubernetes/<k8s>-etcd-<etcd>/bin;
CoreDNS and metrics-server next to it, see build.sh --help).
Needs root, Linux and Go (/usr/local/go/bin or PATH) for the first build.
EOF
}

log() { printf '[cluster %s] %s\n' "$(date -u +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

need_root() {
  [[ $(uname -s) == Linux ]] || die "Linux only"
  [[ $EUID -eq 0 ]] || die "must run as root (kubelet, containerd and the pod network need it)"
}

bindir() { "$HERE/build.sh" --print-bindir "${1:-kubernetes}"; }

kubectl_() { "$(bindir)/kubectl" --kubeconfig "$STATE/admin.conf" "$@"; }

install_packages() {
  local missing=() p
  for p in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${missing[@]}" >"$STATE/apt.log" 2>&1 || {
    apt-get update >>"$STATE/apt.log" 2>&1
    apt-get install -y --no-install-recommends "${missing[@]}" >>"$STATE/apt.log" 2>&1
  } || die "apt-get install failed, see $STATE/apt.log"
}

# --- processes ------------------------------------------------------------------------------

# start NAME BINARY ARGS...: run detached in its own session, log to $LOGS/NAME.log, record PID.
start() {
  local name=$1 && shift
  # (A background job of a non-interactive shell is no process-group leader, so setsid execs
  # in place and $! is the component's own PID.)
  setsid "$@" </dev/null >"$LOGS/$name.log" 2>&1 &
  local pid=$! deadline=$((SECONDS + 10))
  echo "$pid" >"$PIDS/$name.pid"
  echo "$1" >"$PIDS/$name.exe"
  until alive "$name"; do  # on a loaded machine the exec can take a moment
    if [[ ! -e /proc/$pid ]] || ((SECONDS >= deadline)); then
      die "$name exited at once; last log lines:$(printf '\n'; tail -n 20 "$LOGS/$name.log")"
    fi
    sleep 0.1
  done
}

# alive NAME: the recorded PID still runs the recorded binary (guards against PID reuse).
alive() {
  local pid
  pid=$(cat "$PIDS/$1.pid" 2>/dev/null) || return 1
  [[ -e /proc/$pid ]] && [[ $(readlink -f "/proc/$pid/exe" 2>/dev/null) == "$(readlink -f "$(cat "$PIDS/$1.exe")")" ]]
}

stop() {
  local name=$1 pid
  alive "$name" || { rm -f "$PIDS/$name.pid"; return 0; }
  pid=$(cat "$PIDS/$name.pid")
  log "stopping $name (PID $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do [[ -e /proc/$pid ]] || break; sleep 0.1; done
  if [[ -e /proc/$pid ]]; then log "$name did not stop in 10 s: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; sleep 0.5; fi
  rm -f "$PIDS/$name.pid"
}

# wait_for DESCRIPTION SECONDS COMMAND...: poll until COMMAND succeeds.
wait_for() {
  local what=$1 deadline=$((SECONDS + $2)) && shift 2
  while ((SECONDS < deadline)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  die "timed out waiting for $what; logs in $LOGS"
}

# --- configuration --------------------------------------------------------------------------

write_configs() {
  local bin=$BIN
  mkdir -p "$STATE"/{containerd/root,containerd/state,containerd/opt,runc,cni/conf,cni/ipam,etcd,kubelet,images} "$LOGS/pods" "$PIDS"
  mkdir -p "$STATE/registry/data" "$STATE/containerd/certs.d/$REGISTRY"

  cat >"$STATE/kubeadm.yaml" <<EOF
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: $NODE_IP
  bindPort: $API_PORT
nodeRegistration:
  name: $NODE_NAME
  criSocket: unix://$SOCK
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: $("$bin/kubectl" version --client -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])')
clusterName: ml-model-local
certificatesDir: $PKI
controlPlaneEndpoint: 127.0.0.1:$API_PORT
networking:
  dnsDomain: $CLUSTER_DOMAIN
  serviceSubnet: $SERVICE_CIDR
  podSubnet: $POD_CIDR
apiServer:
  certSANs: [127.0.0.1, localhost, $NODE_IP]
etcd:
  local:
    dataDir: $STATE/etcd
EOF

  cat >"$STATE/containerd/config.toml" <<EOF
version = 2
root = "$STATE/containerd/root"
state = "$STATE/containerd/state"
[grpc]
  address = "$SOCK"
[plugins."io.containerd.internal.v1.opt"]
  path = "$STATE/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # REQUIRED here: the machine lacks CAP_SYS_RESOURCE, so sandboxes asking for oom_score_adj
  # -998 fail ("can't get final child's PID from pipe: EOF").
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  # Pod network namespaces under our state dir, not /var/run/netns: 'down' finds every one.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".registry]
    # One directory per registry host with a hosts.toml (written below).
    config_path = "$STATE/containerd/certs.d"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni/conf"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"
        Root = "$STATE/runc"
EOF

  # Images named after the registry on the node's loopback are pulled from it over plain HTTP
  # (containerd would try HTTPS first); loopback needs no TLS, and no other host is configured.
  # containerd 1.6 rejects a hosts.toml without a [host] table ("invalid `host` tree").
  cat >"$STATE/containerd/certs.d/$REGISTRY/hosts.toml" <<EOF
server = "http://$REGISTRY"
[host."http://$REGISTRY"]
  capabilities = ["pull", "resolve"]
EOF

  # CNCF Distribution: filesystem storage under the state dir (gone with 'down'), deletes
  # allowed (tests remove what they push), no tracing export (no collector here).
  cat >"$STATE/registry/config.yml" <<EOF
version: 0.1
log:
  level: info
  fields: {service: registry}
storage:
  filesystem:
    rootdirectory: $STATE/registry/data
  delete:
    enabled: true
http:
  addr: $REGISTRY
  secret: $(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
health:
  storagedriver:
    enabled: true
    interval: 10s
EOF

  # Pods get addresses on our own bridge; no masquerading: pods never need to reach off-host.
  cat >"$STATE/cni/conf/10-bridge.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "ml-model-local", "plugins": [
  {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": "$STATE/cni/ipam",
            "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$NODE_IP"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
EOF

  cat >"$STATE/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$SOCK
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
podLogsDir: $LOGS/pods
volumePluginDir: $STATE/kubelet/volume-plugins
rotateCertificates: false
serverTLSBootstrap: false
# Pods resolve through CoreDNS (kube-dns) only; "" hands them none of the host's resolvers or
# search domains, so no query can leave this host.
clusterDNS: [$DNS_IP]
clusterDomain: $CLUSTER_DOMAIN
resolvConf: ""
# A CI host: never evict or garbage-collect images that cannot be pulled again.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
EOF

  # nftables mode: see README ("kube-proxy"). Zero conntrack settings and oomScoreAdj 0 leave the
  # host's sysctls alone (a shared machine; raising oom_score_adj also needs CAP_SYS_RESOURCE).
  # NodePorts answer on the node IP only, never on loopback or the machine's other addresses.
  cat >"$STATE/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
clientConnection: {kubeconfig: $STATE/kube-proxy.conf}
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_CIDR
nodePortAddresses: [$NODE_IP/32]
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
oomScoreAdj: 0
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
}

pause_image() {
  local tar=$STATE/images/pause.tar
  python3 "$HERE/mkimage.py" -o "$tar" --tag "$PAUSE_IMAGE" \
    --add /usr/bin/catatonit:/pause --entrypoint '["/pause", "-P"]' --user 65535:65535
  ctr --address "$SOCK" -n k8s.io images import "$tar" >/dev/null
}

ensure_bridge() {
  # The bridge CNI plugin reuses an existing bridge; creating it first gives the node a stable,
  # host-local, non-loopback IP (kubelet rejects loopback node IPs) before any pod exists.
  ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
  ip addr show dev "$BRIDGE" | grep -q "inet $NODE_IP/" || ip addr add "$NODE_IP/${POD_CIDR#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  touch "$STATE/bridge-created"
  # The Service range onto the bridge, from the node IP: kube-proxy's DNAT happens after this
  # route is chosen, so a ClusterIP it does not (yet) know goes nowhere but the bridge instead of
  # the default route; and pods answer the node directly. Deleting the bridge deletes the route.
  ip route replace "$SERVICE_CIDR" dev "$BRIDGE" src "$NODE_IP"
}

# Pod to pod (directly or through a ClusterIP) is forwarded from the bridge back onto it; Docker
# sets the FORWARD policy to DROP. Allow exactly that, nothing that leaves the bridge.
FORWARD_RULE=(FORWARD -i "$BRIDGE" -o "$BRIDGE" -m comment --comment ml-model-local -j ACCEPT)
allow_pod_forwarding() {
  iptables -w -C "${FORWARD_RULE[@]}" 2>/dev/null || iptables -w -I "${FORWARD_RULE[@]}"
  if [[ $(cat /proc/sys/net/ipv4/ip_forward) != 1 ]]; then
    echo 1 >/proc/sys/net/ipv4/ip_forward && touch "$STATE/ip-forward-enabled"
  fi
}
disallow_pod_forwarding() {
  while iptables -w -D "${FORWARD_RULE[@]}" 2>/dev/null; do :; done
  [[ ! -f $STATE/ip-forward-enabled ]] || echo 0 >/proc/sys/net/ipv4/ip_forward
}

check_ports() {
  local port busy=()
  # etcd, API, kubelet, controller-manager, scheduler, kube-proxy, CoreDNS, metrics-server, registry
  for port in 2379 2380 "$API_PORT" 10250 10248 10257 10259 10249 10256 1053 10054 10055 4443 "$REGISTRY_PORT"; do
    ss -Hltn "sport = :$port" | grep -q . && busy+=("$port")
  done
  ((${#busy[@]} == 0)) || die "TCP ports already in use: ${busy[*]} (another cluster running? try '${0##*/} down')"
}

# --- commands -------------------------------------------------------------------------------

# --- host processes: start_<component> for each of COMPONENTS, in order ---------------------

make_certs() {
  log "certificates and kubeconfigs (kubeadm init phase certs/kubeconfig)"
  "$BIN/kubeadm" init phase certs all --config "$STATE/kubeadm.yaml" >"$LOGS/kubeadm.log" 2>&1
  "$BIN/kubeadm" init phase kubeconfig all --config "$STATE/kubeadm.yaml" --kubeconfig-dir "$STATE" >>"$LOGS/kubeadm.log" 2>&1
  # kube-proxy's identity: the user that the built-in binding system:node-proxier names.
  "$BIN/kubeadm" kubeconfig user --config "$STATE/kubeadm.yaml" --client-name system:kube-proxy \
    >"$STATE/kube-proxy.conf" 2>>"$LOGS/kubeadm.log"
  # kubeadm points the node-local kubeconfigs at the advertise address (it refuses a loopback
  # one); the API server listens on 127.0.0.1 only, so repoint them there.
  local conf
  for conf in kubelet controller-manager scheduler kube-proxy; do
    "$BIN/kubectl" --kubeconfig "$STATE/$conf.conf" config set-cluster ml-model-local \
      --server "https://127.0.0.1:$API_PORT" >/dev/null
  done
}

start_etcd() {
  start etcd "$BIN/etcd" --name "$NODE_NAME" --data-dir "$STATE/etcd" \
    --listen-client-urls "https://127.0.0.1:2379" --advertise-client-urls "https://127.0.0.1:2379" \
    --listen-peer-urls "http://127.0.0.1:2380" --initial-advertise-peer-urls "http://127.0.0.1:2380" \
    --initial-cluster "$NODE_NAME=http://127.0.0.1:2380" --listen-metrics-urls "http://127.0.0.1:2381" \
    --cert-file "$PKI/etcd/server.crt" --key-file "$PKI/etcd/server.key" \
    --client-cert-auth --trusted-ca-file "$PKI/etcd/ca.crt"
  wait_for "etcd health" 30 curl -fsS http://127.0.0.1:2381/health
}

start_kube-apiserver() {
  # The --proxy-client-*/--requestheader-* flags configure the aggregation layer (front proxy):
  # how the API server authenticates to metrics-server and tells it who the user is.
  start kube-apiserver "$BIN/kube-apiserver" --bind-address 127.0.0.1 --secure-port "$API_PORT" \
    --advertise-address "$NODE_IP" --allow-privileged=true --authorization-mode Node,RBAC \
    --enable-admission-plugins NodeRestriction --client-ca-file "$PKI/ca.crt" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --etcd-servers https://127.0.0.1:2379 --etcd-cafile "$PKI/etcd/ca.crt" \
    --etcd-certfile "$PKI/apiserver-etcd-client.crt" --etcd-keyfile "$PKI/apiserver-etcd-client.key" \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types InternalIP,Hostname \
    --proxy-client-cert-file "$PKI/front-proxy-client.crt" --proxy-client-key-file "$PKI/front-proxy-client.key" \
    --requestheader-client-ca-file "$PKI/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
    --requestheader-extra-headers-prefix X-Remote-Extra- --requestheader-group-headers X-Remote-Group \
    --requestheader-username-headers X-Remote-User \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-cluster-ip-range "$SERVICE_CIDR"
  wait_for "kube-apiserver /readyz" 90 "$BIN/kubectl" --kubeconfig "$STATE/super-admin.conf" get --raw /readyz
  # The two bindings `kubeadm init` creates that this cluster needs: admin.conf's group is
  # cluster-admin; the API server's kubelet client may use the kubelet API (logs, exec, port-forward).
  "$BIN/kubectl" --kubeconfig "$STATE/super-admin.conf" create clusterrolebinding kubeadm:cluster-admins \
    --clusterrole cluster-admin --group kubeadm:cluster-admins >/dev/null
  "$BIN/kubectl" --kubeconfig "$STATE/super-admin.conf" create clusterrolebinding kubeadm:apiserver-kubelet-client \
    --clusterrole system:kubelet-api-admin --user kube-apiserver-kubelet-client >/dev/null
}

start_kube-controller-manager() {
  start kube-controller-manager "$BIN/kube-controller-manager" --bind-address 127.0.0.1 \
    --kubeconfig "$STATE/controller-manager.conf" --authentication-kubeconfig "$STATE/controller-manager.conf" \
    --authorization-kubeconfig "$STATE/controller-manager.conf" --leader-elect=false \
    --cluster-name ml-model-local --root-ca-file "$PKI/ca.crt" \
    --service-account-private-key-file "$PKI/sa.key" --use-service-account-credentials=true \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
    --requestheader-client-ca-file "$PKI/front-proxy-ca.crt" --client-ca-file "$PKI/ca.crt" \
    --service-cluster-ip-range "$SERVICE_CIDR" --allocate-node-cidrs=false
}

start_kube-scheduler() {
  start kube-scheduler "$BIN/kube-scheduler" --bind-address 127.0.0.1 --leader-elect=false \
    --kubeconfig "$STATE/scheduler.conf" --authentication-kubeconfig "$STATE/scheduler.conf" \
    --authorization-kubeconfig "$STATE/scheduler.conf"
}

start_registry() {
  OTEL_TRACES_EXPORTER=none start registry "$(bindir registry)/registry" serve "$STATE/registry/config.yml"
  wait_for "registry on $REGISTRY" 30 curl -fsS -o /dev/null "http://$REGISTRY/v2/"
}

start_containerd() {
  start containerd /usr/bin/containerd --config "$STATE/containerd/config.toml"
  wait_for "containerd socket" 30 ctr --address "$SOCK" version
  pause_image
}

start_kubelet() {
  start kubelet "$BIN/kubelet" --config "$STATE/kubelet/config.yaml" --kubeconfig "$STATE/kubelet.conf" \
    --root-dir "$STATE/kubelet" --cert-dir "$STATE/kubelet/pki" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP"
}

start_kube-proxy() {
  start kube-proxy "$BIN/kube-proxy" --config "$STATE/kube-proxy.yaml"
  # /healthz turns 200 once the rules are programmed (it waits for the Node object first).
  wait_for "kube-proxy /healthz" 120 curl -fsS http://127.0.0.1:10256/healthz
}

# Stop hooks (cmd_down): before_stop_<component> / after_stop_<component>, when defined.
before_stop_kubelet() { drain_pods; }
after_stop_kubelet() { remove_containers; }
after_stop_containerd() {
  local pid
  # Shims of our containerd (their command line names our socket) that outlived it.
  for pid in $(pgrep -f -- "containerd-shim-runc-v2 .*-address $SOCK( |\$)" || true); do
    log "killing leftover shim PID $pid"
    kill -KILL "$pid" 2>/dev/null || true
  done
}
after_stop_kube-proxy() {
  # kube-proxy's nftables mode keeps all of its rules in these two tables, and nothing else.
  local family
  for family in ip ip6; do
    nft list table "$family" kube-proxy >/dev/null 2>&1 && nft delete table "$family" kube-proxy
  done
  return 0
}

# --- add-ons: Deployments in kube-system, addon_<name> / ready_<name> / status_<name> ------

# addon_image NAME BINARY: a one-file image (NAME's static binary as /NAME, non-root), imported;
# prints its tag, localhost/ml-model/NAME:<version of its build cache>.
addon_image() {
  local name=$1 binary=$2 tag tar
  tag=localhost/ml-model/$name:$(basename "$(dirname "$(dirname "$binary")")")
  tar=$STATE/images/$name.tar
  python3 "$HERE/mkimage.py" -o "$tar" --tag "$tag" --add "$binary:/$name" \
    --entrypoint "[\"/$name\"]" --user 65534:65534
  ctr --address "$SOCK" -n k8s.io images import "$tar" >/dev/null
  echo "$tag"
}

# apply_manifest FILE: kubectl apply FILE with its ${VAR} placeholders filled from the environment
# (strict: an unknown placeholder is an error).
apply_manifest() {
  python3 -c 'import os, string, sys; sys.stdout.write(string.Template(open(sys.argv[1]).read()).substitute(os.environ))' "$1" |
    kubectl_ apply -f - >/dev/null
}

addon_coredns() {
  COREDNS_IMAGE=$(addon_image coredns "$(bindir coredns)/coredns") NODE_IP=$NODE_IP DNS_IP=$DNS_IP \
    API_PORT=$API_PORT apply_manifest "$HERE/coredns/manifest.yaml"
}
ready_coredns() {
  kubectl_ -n kube-system rollout status deployment/coredns --timeout=120s >/dev/null
  # From the node through the kube-dns ClusterIP (kube-proxy): the cluster's names resolve,
  # any other name is refused (nothing is forwarded off this host).
  wait_for "kube-dns to resolve kubernetes.default" 30 resolves "kubernetes.default.svc.$CLUSTER_DOMAIN" \
    "$(kubectl_ get service kubernetes -n default -o jsonpath='{.spec.clusterIP}')"
  [[ $(dns_query example.org) == REFUSED ]] || die "CoreDNS answered example.org: it must refuse names outside the cluster"
}
resolves() { [[ $(dns_query "$1") == "NOERROR $2" ]]; }

# dns_query NAME: ask kube-dns (UDP, type A) through its ClusterIP; prints "RCODE [ADDRESS]".
dns_query() {
  python3 - "$1" "$DNS_IP" <<'PY'
import secrets, socket, struct, sys
name, server = sys.argv[1], sys.argv[2]
qid = secrets.randbelow(65536)
question = b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\0"
query = struct.pack(">6H", qid, 0x0100, 1, 0, 0, 0) + question + struct.pack(">2H", 1, 1)
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
    sock.settimeout(2)
    sock.sendto(query, (server, 53))
    reply = sock.recv(4096)
rcode = {0: "NOERROR", 2: "SERVFAIL", 3: "NXDOMAIN", 5: "REFUSED"}.get(reply[3] & 15, str(reply[3] & 15))
answers, offset = struct.unpack(">H", reply[6:8])[0], 12 + len(question) + 4
address = ""
if answers:  # skip the first answer's name: labels, or a 2-byte pointer (compression)
    while reply[offset] and reply[offset] < 0xC0:
        offset += 1 + reply[offset]
    offset += 2 if reply[offset] else 1
    kind, _, _, length = struct.unpack(">2HIH", reply[offset : offset + 10])
    if kind == 1 and length == 4:
        address = socket.inet_ntoa(reply[offset + 10 : offset + 14])
print(f"{rcode} {address}".strip())
PY
}
status_coredns() {
  local rc=0
  addon_pods k8s-app=kube-dns || rc=1
  printf ', Service kube-dns %s:53' "$(kubectl_ -n kube-system get service kube-dns -o jsonpath='{.spec.clusterIP}')"
  return $rc
}

addon_metrics-server() {
  METRICS_SERVER_IMAGE=$(addon_image metrics-server "$(bindir metrics-server)/metrics-server") \
    NODE_IP=$NODE_IP API_PORT=$API_PORT apply_manifest "$HERE/metrics-server/manifest.yaml"
}
ready_metrics-server() {
  kubectl_ -n kube-system rollout status deployment/metrics-server --timeout=120s >/dev/null &&
    kubectl_ wait --for=condition=Available apiservice/v1beta1.metrics.k8s.io --timeout=60s >/dev/null
}
status_metrics-server() {
  local rc=0 available
  addon_pods k8s-app=metrics-server || rc=1
  available=$(kubectl_ get apiservice v1beta1.metrics.k8s.io \
    -o jsonpath='{.status.conditions[?(@.type=="Available")].status}')
  printf ', APIService v1beta1.metrics.k8s.io Available=%s' "$available"
  [[ $available == True ]] || rc=1
  return $rc
}

# addon_pods SELECTOR: "pod kube-system/NAME (Ready)" for each pod; fails unless all are Ready.
addon_pods() {
  local out
  out=$(kubectl_ -n kube-system get pods -l "$1" -o \
    jsonpath='{range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}')
  [[ -n $out ]] || { printf 'no pod'; return 1; }
  awk '{printf "%spod kube-system/%s (Ready=%s)", (NR > 1 ? ", " : ""), $1, $2; if ($2 != "True") bad = 1}
       END {exit bad}' <<<"$out"
}

# --- commands -------------------------------------------------------------------------------

cmd_up() {
  need_root
  local t0 c
  t0=$(date +%s)
  if [[ -d $STATE ]]; then
    if all_alive; then log "already up"; cmd_env; return 0; fi
    log "found a stopped or partial cluster in $STATE: tearing it down first"
    cmd_down
  fi
  trap 'log "start-up failed: logs in $LOGS; run \"${0##*/} down\" to clean up"' EXIT
  mkdir -p "$STATE" "$LOGS" "$PIDS"
  install_packages
  "$HERE/build.sh"
  BIN=$(bindir)
  check_ports
  write_configs
  ensure_bridge
  allow_pod_forwarding
  mount --make-rshared /
  make_certs
  for c in "${COMPONENTS[@]}"; do
    log "$c"
    "start_$c"
  done
  wait_for "node $NODE_NAME Ready" 120 kubectl_ wait --for=condition=Ready "node/$NODE_NAME" --timeout=1s
  wait_for "ServiceAccount default/default" 60 kubectl_ get serviceaccount default -n default
  log "add-ons: ${ADDONS[*]}"
  for c in "${ADDONS[@]}"; do "addon_$c"; done
  for c in "${ADDONS[@]}"; do "ready_$c" || die "add-on $c did not become ready; 'kubectl -n kube-system describe pods' and $LOGS/pods"; done
  all_alive || die "a component exited during start-up; see $LOGS"
  "$HERE/monitoring.sh" up  # Prometheus on the host (monitoring.sh)
  trap - EXIT
  log "up in $(($(date +%s) - t0)) s; logs in $LOGS"
  cmd_env
}

all_alive() {
  local c
  for c in "${COMPONENTS[@]}"; do alive "$c" || return 1; done
}

# Delete every pod through the API while kubelet still runs: kubelet then stops the sandboxes,
# which is where containerd releases pod IPs (CNI DEL) and network namespaces.
drain_pods() {
  [[ -f $STATE/admin.conf ]] && alive kube-apiserver && alive kubelet || return 0
  kubectl_ delete pods --all --all-namespaces --grace-period=5 --timeout=40s --wait=true >/dev/null 2>&1 ||
    log "warning: some pods did not terminate in time; removing them with ctr"
}

# Kill and delete whatever containers remain, so their shims exit; remember sandbox netns paths.
remove_containers() {
  local ids id ns
  [[ -S $SOCK ]] && alive containerd || return 0
  ids=$(ctr --address "$SOCK" -n k8s.io containers ls -q 2>/dev/null) || return 0
  for id in $ids; do
    ns=$(ctr --address "$SOCK" -n k8s.io containers info "$id" 2>/dev/null | python3 -c '
import json, sys
spec = json.load(sys.stdin).get("Spec") or {}
for n in spec.get("linux", {}).get("namespaces", []):
    if n.get("type") == "network" and "/netns/cni-" in n.get("path", ""):
        print(n["path"])' || true)
    if [[ -n $ns ]]; then  # a pod sandbox that was not stopped through CRI
      echo "$ns" >>"$STATE/netns.list"
      # libcni's result cache for it (only CNI DEL removes it; our network's name is unique)
      rm -f "/var/lib/cni/results/ml-model-local-$id-eth0" "/var/lib/cni/results/cni-loopback-$id-lo"
    fi
    ctr --address "$SOCK" -n k8s.io tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
  done
  sleep 1
  for id in $ids; do
    ctr --address "$SOCK" -n k8s.io tasks delete -f "$id" >/dev/null 2>&1 || true
    ctr --address "$SOCK" -n k8s.io containers delete "$id" >/dev/null 2>&1 || true
  done
}

cmd_down() {
  need_root
  [[ -d $STATE ]] || { log "nothing to do: $STATE does not exist"; return 0; }
  local c i m
  "$HERE/monitoring.sh" down  # Prometheus, by PID (monitoring.sh)
  stop kube-controller-manager  # no ReplicaSet may recreate the pods drained next
  stop kube-scheduler
  # The rest in reverse start order, each with its hooks (kubelet: drain pods first).
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
    c=${COMPONENTS[i]}
    if declare -F "before_stop_$c" >/dev/null; then "before_stop_$c"; fi
    stop "$c"
    if declare -F "after_stop_$c" >/dev/null; then "after_stop_$c"; fi
  done
  # Mounts below the state dir (overlay rootfs, tmpfs volumes, shm), deepest first, then the
  # network namespaces of sandboxes that were not stopped through CRI.
  while read -r m; do umount -l "$m" 2>/dev/null || true; done < <(
    awk -v s="$STATE/" 'index($5, s) == 1 {print $5}' /proc/self/mountinfo | sort -r)
  if [[ -f $STATE/netns.list ]]; then
    while read -r m; do umount "$m" 2>/dev/null || true; rm -f "$m"; done <"$STATE/netns.list"
  fi
  disallow_pod_forwarding
  if [[ -f $STATE/bridge-created ]] && ip link show "$BRIDGE" >/dev/null 2>&1; then ip link delete "$BRIDGE"; fi
  for c in "${COMPONENTS[@]}"; do [[ ! -f $PIDS/$c.pid ]] || die "$c still recorded as running"; done
  rm -rf "$STATE"
  log "down: all processes stopped, $STATE removed"
}

cmd_status() {
  local c rc=0 line
  [[ -d $PIDS ]] || { echo "down (no $STATE)"; return 3; }
  for c in "${COMPONENTS[@]}"; do
    if alive "$c"; then printf '%-24s running  PID %s' "$c" "$(cat "$PIDS/$c.pid")"
    else printf '%-24s STOPPED' "$c"; rc=3; fi
    if [[ $c == kube-proxy ]] && alive "$c"; then
      printf '  (%s mode)' "$(curl -fsS http://127.0.0.1:10249/proxyMode 2>/dev/null || echo unknown)"
    fi
    echo
  done
  "$HERE/monitoring.sh" status || rc=3
  alive kube-apiserver || return 3
  for c in "${ADDONS[@]}"; do
    if line=$("status_$c" 2>&1); then printf '%-24s running  %s\n' "$c" "$line"
    else printf '%-24s NOT READY  %s\n' "$c" "$line"; rc=3; fi
  done
  kubectl_ get nodes -o wide
  return $rc
}

cmd_env() {
  echo "export KUBECONFIG=$STATE/admin.conf"
  echo "export E2E_KUBECONFIG=$STATE/admin.conf"
  echo "export E2E_CONTAINERD_SOCKET=$SOCK"
  echo "export E2E_REGISTRY=$REGISTRY"
  echo "export E2E_PROMETHEUS_URL=$("$HERE/monitoring.sh" url)"
  echo "export PATH=$(bindir):\$PATH"
}

cmd_load_image() {
  (($#)) || die "usage: ${0##*/} load-image IMAGE [IMAGE...]"
  [[ -S $SOCK ]] || die "cluster is not up ($SOCK missing)"
  local image
  for image in "$@"; do
    log "importing $image into containerd (namespace k8s.io)"
    if [[ $image == *.tar && -f $image ]]; then
      ctr --address "$SOCK" -n k8s.io images import "$image"
    else
      docker info >/dev/null 2>&1 || die "docker daemon not reachable: cannot 'docker save $image'"
      docker save "$image" | ctr --address "$SOCK" -n k8s.io images import -
    fi
  done
}

cmd_deploy() {
  (($# >= 1 && $# <= 2)) || die "usage: ${0##*/} deploy IMAGE [OVERLAY_DIR]"
  all_alive || die "cluster is not up"
  cmd_load_image "$1"
  KUBECONFIG=$STATE/admin.conf python3 "$HERE/deploy.py" "$1" ${2:+--overlay "$2"} \
    --kubectl "$(bindir)/kubectl" --apply
}

# A Deployment + Service from a locally built busybox image, reached from the node through the
# Service's ClusterIP (kube-proxy): the path the e2e suite's load takes.
cmd_smoke() {
  need_root
  all_alive || die "cluster is not up"
  local tmp ip body ok=0 t0
  t0=$(date +%s)
  dpkg-query -W -f '${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed' ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends busybox-static >/dev/null
  tmp=$(mktemp -d)
  echo "ml-model local cluster smoke test" >"$tmp/index.html"
  python3 "$HERE/mkimage.py" -o "$tmp/busybox.tar" --tag localhost/ml-model/busybox-httpd:smoke \
    --add /bin/busybox:/bin/busybox --add "$tmp/index.html:/www/index.html" \
    --entrypoint '["/bin/busybox", "httpd", "-f", "-v", "-p", "8080", "-h", "/www"]' --user 65534:65534
  cmd_load_image "$tmp/busybox.tar" >/dev/null
  kubectl_ apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: smoke, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: smoke}}
  template:
    metadata: {labels: {app: smoke}}
    spec:
      automountServiceAccountToken: false
      terminationGracePeriodSeconds: 2
      containers:
        - name: httpd
          image: localhost/ml-model/busybox-httpd:smoke
          imagePullPolicy: Never
          ports: [{containerPort: 8080}]
          readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: smoke, namespace: default}
spec:
  selector: {app: smoke}
  ports: [{port: 80, targetPort: 8080}]
EOF
  kubectl_ rollout status deployment/smoke --timeout=120s >&2
  ip=$(kubectl_ get service smoke -o jsonpath='{.spec.clusterIP}')
  for _ in $(seq 40); do
    if body=$(curl -fsS --max-time 2 "http://$ip/" 2>/dev/null); then ok=1; break; fi
    sleep 0.5
  done
  kubectl_ delete deployment/smoke service/smoke --wait=true >/dev/null
  kubectl_ wait --for=delete pod -l app=smoke --timeout=60s >/dev/null 2>&1 || true
  rm -rf "$tmp"
  [[ $ok == 1 && $body == "ml-model local cluster smoke test" ]] || die "svc/smoke at $ip:80 failed (got: ${body:-nothing})"
  log "smoke test passed in $(($(date +%s) - t0)) s: svc/smoke answered on its ClusterIP $ip:80"
}

main() {
  case ${1:-} in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    kubeconfig) echo "$STATE/admin.conf" ;;
    env) cmd_env ;;
    load-image) shift && cmd_load_image "$@" ;;
    deploy) shift && cmd_deploy "$@" ;;
    build) "$HERE/build.sh" ;;
    smoke) cmd_smoke ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

[[ ${BASH_SOURCE[0]} != "$0" ]] || main "$@"
