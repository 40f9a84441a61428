#!/usr/bin/env bash
# A Kubernetes control plane on 127.0.0.1 for running the platform's
# Kubernetes layer offline: etcd, kube-apiserver (own CA, RBAC on),
# kube-controller-manager, kube-scheduler, and one kwok node that marks
# pods Ready without running containers. State lives in .sandbox/.
#
# usage: scripts/sandbox/sandbox.sh up|down|status
#   up      start what is not running (idempotent); writes .sandbox/kubeconfig
#   down    stop exactly the processes `up` started and remove .sandbox/
#   status  what runs, and whether the node is Ready
#
# Binaries: all from .tools/bin (scripts/tools/build.sh builds them from Go
# modules, etcd 3.6 included; none from the system's packages).
# Ports: SANDBOX_PORT_BASE (default 18000) + 379 etcd, +380 etcd peer, +443 API, +257/+259 controller-manager/
# scheduler health, +247 kwok.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
state="${SANDBOX_DIR:-$root/.sandbox}"
bin="${TOOLS_BIN:-$root/.tools/bin}"
base="${SANDBOX_PORT_BASE:-18000}"
etcd_port=$((base + 379)) etcd_peer=$((base + 380)) api_port=$((base + 443))
cm_port=$((base + 257)) sched_port=$((base + 259)) kwok_port=$((base + 247))
node=sandbox-node-0
kubeconfig="$state/kubeconfig"

log() { printf '[sandbox] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

need() {
  local b
  for b in "$@"; do
    [ -x "$bin/$b" ] || die "$bin/$b is missing; build it with scripts/tools/build.sh (make tools)"
  done
}

# running NAME: the process `up` started for NAME is alive (and is still
# that program, not a recycled pid).
running() {
  local pidf="$state/run/$1.pid" pid
  [ -f "$pidf" ] || return 1
  pid=$(cat "$pidf")
  [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$2"
}

# start NAME PROGRAM ARGS...: in its own session, logging to run/NAME.log.
start() {
  local name=$1; shift
  if running "$name" "$name"; then
    log "$name: already running (pid $(cat "$state/run/$name.pid"))"
    return
  fi
  setsid "$@" >"$state/run/$name.log" 2>&1 </dev/null &
  echo $! >"$state/run/$name.pid"
  log "$name: started (pid $!, log $state/run/$name.log)"
}

# wait_for WHAT SECONDS COMMAND...: poll until COMMAND succeeds.
wait_for() {
  local what=$1 secs=$2; shift 2
  local i
  for ((i = 0; i < secs * 5; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  die "$what not ready after ${secs}s; see the logs in $state/run/"
}

# cert NAME CN ORG SANS: a key and a certificate signed by the sandbox CA.
cert() {
  local name=$1 cn=$2 org=$3 sans=$4 pki="$state/pki"
  [ -f "$pki/$name.crt" ] && return
  local subj="/CN=$cn"
  [ -n "$org" ] && subj="/O=$org$subj"
  openssl req -new -newkey rsa:2048 -nodes -keyout "$pki/$name.key" -out "$pki/$name.csr" -subj "$subj" 2>/dev/null
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=digitalSignature,keyEncipherment"
    if [ -n "$sans" ]; then echo "extendedKeyUsage=serverAuth,clientAuth"; echo "subjectAltName=$sans"; else echo "extendedKeyUsage=clientAuth"; fi
  } >"$pki/$name.ext"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -out "$pki/$name.crt" -days 365 -extfile "$pki/$name.ext" 2>/dev/null
}

# kubeconfig_for NAME: a kubeconfig with NAME's client certificate.
kubeconfig_for() {
  local name=$1 pki="$state/pki"
  cat >"$state/$name.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: sandbox
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority-data: $(base64 -w0 <"$pki/ca.crt")
users:
- name: $name
  user:
    client-certificate-data: $(base64 -w0 <"$pki/$name.crt")
    client-key-data: $(base64 -w0 <"$pki/$name.key")
contexts:
- name: sandbox
  context: {cluster: sandbox, user: $name}
current-context: sandbox
EOF
  chmod 600 "$state/$name.kubeconfig"
}

pki() {
  local pki="$state/pki"
  mkdir -p "$pki"
  if [ ! -f "$pki/ca.crt" ]; then
    log "creating the sandbox CA and certificates"
    openssl req -x509 -new -nodes -newkey rsa:2048 -keyout "$pki/ca.key" -out "$pki/ca.crt" \
      -days 365 -subj "/CN=microk8s-platform-sandbox-ca" 2>/dev/null
    openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
    openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  fi
  cert apiserver kube-apiserver "" "IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert admin admin system:masters ""
  cert controller-manager system:kube-controller-manager "" ""
  cert scheduler system:kube-scheduler "" ""
  cert kwok kwok system:masters ""
  for n in admin controller-manager scheduler kwok; do kubeconfig_for "$n"; done
  cp "$state/admin.kubeconfig" "$kubeconfig"
}

# kwok acts only through Stage objects: the module's fast node and pod
# lifecycles, and lease heartbeats so the node-lifecycle controller sees
# the node alive and lifts its not-ready taint.
kwok_stages() {
  local dir
  dir=$(cd "$root/scripts/tools/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
  local s
  : >"$state/kwok-stages.yaml"
  for s in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
    pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    [ -f "$dir/kustomize/stage/$s" ] || die "kwok stage $s not found in $dir"
    { echo "---"; cat "$dir/kustomize/stage/$s"; } >>"$state/kwok-stages.yaml"
  done
}

# kubectl from .tools/bin (built with the control plane), else from PATH.
kubectl=$bin/kubectl
[ -x "$kubectl" ] || kubectl=$(command -v kubectl || echo kubectl)
kubectl_() { "$kubectl" --kubeconfig "$kubeconfig" "$@"; }

up() {
  need etcd kube-apiserver kube-controller-manager kube-scheduler kwok
  command -v "$kubectl" >/dev/null || die "kubectl is missing (make tools builds it)"
  command -v curl >/dev/null || die "curl is missing"
  command -v openssl >/dev/null || die "openssl is missing"
  mkdir -p "$state/run" "$state/etcd"
  local t0=$SECONDS
  pki
  local pki="$state/pki"

  start etcd "$bin/etcd" --name sandbox --data-dir "$state/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-cluster "sandbox=http://127.0.0.1:$etcd_peer" --unsafe-no-fsync --log-level warn
  wait_for etcd 30 curl -fsS "http://127.0.0.1:$etcd_port/health"

  # WatchList stays on (the default): streaming watch lists need etcd's
  # RequestWatchProgress, which the API server uses only from etcd 3.4.31 /
  # 3.5.13 on (k8s.io/apiserver pkg/storage/feature/
  # feature_support_checker.go); the etcd built here is 3.6. Debian's 3.4
  # was older, and kwok's watches then ended every few seconds.
  start kube-apiserver "$bin/kube-apiserver" --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
    --service-cluster-ip-range 10.96.0.0/16 --allow-privileged=true --authorization-mode Node,RBAC \
    --client-ca-file "$pki/ca.crt" --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --cert-dir "$state/pki/apiserver-generated" --v 1
  wait_for kube-apiserver 90 kubectl_ get --raw /readyz
  if grep -q "RequestWatchProgress feature is not supported" "$state/run/kube-apiserver.log"; then
    die "the API server says etcd ($("$bin/etcd" --version | head -1)) cannot serve RequestWatchProgress; streaming watch lists would stall"
  fi

  start kube-controller-manager "$bin/kube-controller-manager" \
    --kubeconfig "$state/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$state/controller-manager.kubeconfig" --authorization-kubeconfig "$state/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$cm_port" --leader-elect=false \
    --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" --use-service-account-credentials \
    --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
    --enable-hostpath-provisioner=true \
    --cert-dir "$state/pki/cm-generated" --v 1
  start kube-scheduler "$bin/kube-scheduler" --kubeconfig "$state/scheduler.kubeconfig" \
    --authentication-kubeconfig "$state/scheduler.kubeconfig" --authorization-kubeconfig "$state/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$sched_port" --leader-elect=false \
    --cert-dir "$state/pki/sched-generated" --v 1

  kwok_stages
  start kwok "$bin/kwok" --kubeconfig "$state/kwok.kubeconfig" --config "$state/kwok-stages.yaml" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --node-lease-duration-seconds 40 --cidr 10.244.0.1/24 --node-ip 127.0.0.1 \
    --server-address "127.0.0.1:$kwok_port"

  # The node kwok plays, and a default storage class served by the
  # controller-manager's hostPath provisioner (volumes under /tmp/hostpath_pv,
  # deleted with their claims), so the database's claim binds.
  kubectl_ apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata:
  name: $node
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
  labels: {kubernetes.io/hostname: $node, kubernetes.io/os: linux, kubernetes.io/arch: amd64, type: kwok}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: sandbox-hostpath
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: kubernetes.io/host-path
reclaimPolicy: Delete
volumeBindingMode: Immediate
EOF
  wait_for "node $node Ready" 90 sh -c "'$kubectl' --kubeconfig '$kubeconfig' get node $node -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"
  wait_for "node $node untainted" 120 sh -c "! '$kubectl' --kubeconfig '$kubeconfig' get node $node -o jsonpath='{.spec.taints}' | grep -q not-ready"
  wait_for "default service account" 60 kubectl_ get serviceaccount default -n default
  log "ready in $((SECONDS - t0))s: export KUBECONFIG=$kubeconfig"
}

down() {
  local name pid
  for name in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
    if running "$name" "$name"; then
      pid=$(cat "$state/run/$name.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
      if [ -d "/proc/$pid" ]; then kill -9 "$pid" 2>/dev/null || true; fi
      log "$name: stopped (pid $pid)"
    fi
  done
  rm -rf "$state"
  log "removed $state"
}

status() {
  local name rc=0
  for name in etcd kube-apiserver kube-controller-manager kube-scheduler kwok; do
    if running "$name" "$name"; then echo "$name: running (pid $(cat "$state/run/$name.pid"))"; else echo "$name: not running"; rc=1; fi
  done
  [ "$rc" = 0 ] && kubectl_ get nodes
  return "$rc"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
