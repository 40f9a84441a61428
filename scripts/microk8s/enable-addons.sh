#!/usr/bin/env bash
# Configures MicroK8s' addons and API server, converging on every run:
#
#  1. rbac, and an API server on 16443 that refuses anonymous requests.
#     MicroK8s ships --authorization-mode=AlwaysAllow and no --anonymous-auth
#     (so the default, true): anyone reaching 16443 could do anything.
#     `microk8s status` reports rbac by the clusterrole cluster-admin, which the
#     API server creates in any mode, so the args file is the truth here.
#  2. dns, hostpath-storage.
#  3. metallb with a one-address pool: METALLB_ADDRESS, or the address of the
#     host's default route when empty. Either must be an address of this host
#     (never a cloud's public address, which the VM does not own). A changed
#     address is patched into the addon's IPAddressPool default-addresspool.
#  4. observability (OBSERVABILITY=true) with our kube-prometheus-stack values:
#     Prometheus's data on a hostpath volume, capped by size below it
#     (retentionSize; hostpath does not enforce the claim's size), running as
#     PROMETHEUS_UID:PROMETHEUS_GID, and Alertmanager configured from the
#     Secret ALERTMANAGER_SECRET that the Kubernetes layer writes. Changed
#     values are applied to the installed release.
#     With DATA_MOUNT (the data disk, mount-data-disk.sh), first the
#     StorageClass platform-data (no provisioner, Retain) and Prometheus's
#     static PersistentVolume on DATA_MOUNT/prometheus (hostPath type
#     Directory: if the disk is not mounted the pod fails instead of writing
#     to the root disk), which Prometheus's claim selects by label; without
#     it, MicroK8s's hostpath class on the root disk.
#
# Each `microk8s enable` is bounded by ENABLE_TIMEOUT seconds (metallb's own
# enable loops until its controller is Available, with no limit).
#
# env: METALLB_ADDRESS, OBSERVABILITY (true|false), ALERTMANAGER_SECRET,
#      PROMETHEUS_STORAGE (default 10Gi), PROMETHEUS_RETENTION (default 15d),
#      PROMETHEUS_RETENTION_SIZE (default 8GB), PROMETHEUS_UID, PROMETHEUS_GID
#      (default 1000, 2000), DATA_MOUNT (default none),
#      ENABLE_TIMEOUT (default 900), READY_TIMEOUT (default 600), GRACE (default 60),
#      SNAP_DATA (default /var/snap/microk8s/current),
#      SNAP_COMMON (default /var/snap/microk8s/common)
set -euo pipefail
snap_data="${SNAP_DATA:-/var/snap/microk8s/current}"
snap_common="${SNAP_COMMON:-/var/snap/microk8s/common}"
enable_timeout="${ENABLE_TIMEOUT:-900}"
ready_timeout="${READY_TIMEOUT:-600}"
grace="${GRACE:-60}" # beyond a command's own --timeout before it is killed
observability="${OBSERVABILITY:-false}"
am_secret="${ALERTMANAGER_SECRET:-platform-alertmanager}"
prom_storage="${PROMETHEUS_STORAGE:-10Gi}"
prom_retention="${PROMETHEUS_RETENTION:-15d}"
prom_retention_size="${PROMETHEUS_RETENTION_SIZE:-8GB}"
prom_uid="${PROMETHEUS_UID:-1000}"
prom_gid="${PROMETHEUS_GID:-2000}"
data_mount="${DATA_MOUNT:-}"
apiserver_args="$snap_data/args/kube-apiserver"

log() { echo "[enable-addons] $*"; }
die() { echo "[enable-addons] $*" >&2; exit 1; }

# bounded SECONDS WHAT CMD...: runs CMD, fails naming WHAT after SECONDS.
bounded() {
  local secs="$1" what="$2" rc=0
  shift 2
  timeout -k 30 "$secs" "$@" || rc=$?
  [ "$rc" -eq 124 ] && die "gave up after ${secs}s waiting for $what ($*)"
  [ "$rc" -eq 0 ] || die "'$*' failed (exit $rc) while waiting for $what"
}

wait_ready() {
  log "waiting up to ${ready_timeout}s for the cluster ($1)"
  bounded $((ready_timeout + grace)) "MicroK8s to be ready $1" microk8s status --wait-ready --timeout "$ready_timeout" >/dev/null
}

enabled() { [ "$(microk8s status --addon "$1" 2>/dev/null || true)" = enabled ]; }

# enable NAME WHAT [ARGS...]
enable() {
  local name="$1" what="$2"
  shift 2
  if enabled "$name"; then
    log "$name already enabled"
    return
  fi
  log "enabling $name $*"
  bounded "$enable_timeout" "$what" microk8s enable "$name" "$@"
}

# 1. RBAC and no anonymous access.
restart=false
if ! grep -qx -- '--authorization-mode=RBAC,Node' "$apiserver_args"; then
  log "enabling rbac"
  bounded "$enable_timeout" "the rbac addon to reconfigure the API server" microk8s enable rbac
  if ! grep -qx -- '--authorization-mode=RBAC,Node' "$apiserver_args"; then
    # `microk8s enable rbac` skipped it as "already enabled": do what its
    # enable script does.
    log "microk8s reported rbac as enabled without changing the API server; setting --authorization-mode=RBAC,Node"
    sed -i '/^--authorization-mode[= ]/d' "$apiserver_args"
    echo '--authorization-mode=RBAC,Node' >> "$apiserver_args"
    restart=true
  fi
fi
if ! grep -qx -- '--anonymous-auth=false' "$apiserver_args"; then
  log "turning anonymous requests to the API server off"
  sed -i '/^--anonymous-auth[= ]/d' "$apiserver_args"
  echo '--anonymous-auth=false' >> "$apiserver_args"
  restart=true
fi
if $restart; then
  log "restarting the API server (kubelite)"
  bounded 300 "snapd to restart microk8s.daemon-kubelite" snap restart microk8s.daemon-kubelite
fi
wait_ready "after the API server's settings"
code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 10 https://127.0.0.1:16443/api/v1/namespaces || true)
[ "$code" = 401 ] || die "the API server answered an anonymous request with HTTP $code, want 401; see $apiserver_args"
log "anonymous requests get 401"

# 2. DNS and storage.
enable dns "the dns addon (CoreDNS)"
enable hostpath-storage "the hostpath-storage addon"

# 3. MetalLB on an address of this host.
own=$(ip -4 -o addr show | awk '{print $4}' | cut -d/ -f1)
address="${METALLB_ADDRESS:-}"
if [ -z "$address" ]; then
  address=$(ip -4 route get 1.1.1.1 2>/dev/null | sed -nE 's/.* src ([0-9.]+).*/\1/p' | head -n1 || true)
  [ -n "$address" ] || die "no METALLB_ADDRESS given and no default route to find the host's address by; set sshPrivateIp"
  log "MetalLB address from the host's default route: $address"
fi
grep -qxF "$address" <<<"$own" ||
  die "MetalLB address $address is not an address of this host (it has: $(tr '\n' ' ' <<<"$own")); a cloud's public address is not on the VM, set sshPrivateIp to the host's own address"
pool="$address-$address"
if enabled metallb; then
  current=$(bounded 60 "the MetalLB address pool" microk8s kubectl -n metallb-system get ipaddresspool default-addresspool -o 'jsonpath={.spec.addresses}')
  if [ "$current" != "[\"$pool\"]" ]; then
    log "MetalLB pool is $current; setting it to $pool"
    bounded 60 "the MetalLB address pool to update" microk8s kubectl -n metallb-system patch ipaddresspool default-addresspool \
      --type merge -p "{\"spec\":{\"addresses\":[\"$pool\"]}}"
  else
    log "metallb already enabled with $pool"
  fi
else
  enable metallb "the metallb addon (its controller Available and the address pool accepted)" "$pool"
fi

# 4. Observability with Prometheus on the data disk (or the host's disk) and
# our Alertmanager.
values_dir="$snap_common/platform"
prom_class=microk8s-hostpath
prom_selector=""
if [ -n "$data_mount" ]; then
  prom_class=platform-data
  prom_selector="
          selector:
            matchLabels:
              microk8s-platform/data: prometheus"
  mkdir -p "$values_dir"
  storage="$values_dir/platform-data.yaml"
  cat > "$storage.new" <<STORAGE
# Written by microk8s-platform (scripts/microk8s/enable-addons.sh).
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: platform-data
provisioner: kubernetes.io/no-provisioner
reclaimPolicy: Retain
volumeBindingMode: WaitForFirstConsumer
---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: platform-data-prometheus
  labels:
    microk8s-platform/data: prometheus
spec:
  capacity:
    storage: $prom_storage
  accessModes: ["ReadWriteOnce"]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: platform-data
  hostPath:
    path: $data_mount/prometheus
    type: Directory
STORAGE
  mv "$storage.new" "$storage"
  if ! cmp -s "$storage" "$storage.applied"; then
    log "declaring the data disk's StorageClass platform-data and Prometheus's volume on $data_mount"
    bounded 120 "the API server to take the platform-data class and volume" microk8s kubectl apply -f "$storage"
    cp "$storage" "$storage.applied"
  fi
fi
if [ "$observability" = true ]; then
  values="$values_dir/kube-prometheus-stack-values.yaml"
  mkdir -p "$values_dir"
  cat > "$values.new" <<VALUES
# Written by microk8s-platform (scripts/microk8s/enable-addons.sh).
alertmanager:
  alertmanagerSpec:
    useExistingSecret: true
    configSecret: $am_secret
prometheus:
  prometheusSpec:
    retention: $prom_retention
    retentionSize: $prom_retention_size
    securityContext:
      runAsNonRoot: true
      runAsUser: $prom_uid
      runAsGroup: $prom_gid
      fsGroup: $prom_gid
      seccompProfile:
        type: RuntimeDefault
    storageSpec:
      volumeClaimTemplate:
        spec:
          storageClassName: $prom_class$prom_selector
          accessModes: ["ReadWriteOnce"]
          resources:
            requests:
              storage: $prom_storage
VALUES
  mv "$values.new" "$values"
  applied="$values_dir/kube-prometheus-stack-values.applied"
  if ! enabled observability; then
    enable observability "the observability addon (kube-prometheus-stack, loki, tempo)" "--kube-prometheus-stack-values=$values"
    cp "$values" "$applied"
  elif ! cmp -s "$values" "$applied"; then
    chart=$(bounded 60 "helm to list the observability releases" microk8s helm3 list -n observability -o json |
      grep -oE '"chart":"kube-prometheus-stack-[^"]+"' | head -n1 | sed -E 's/.*kube-prometheus-stack-([^"]+)"/\1/')
    [ -n "$chart" ] || die "observability is enabled but helm has no kube-prom-stack release in namespace observability"
    log "applying new kube-prometheus-stack values to kube-prom-stack $chart"
    bounded "$enable_timeout" "helm to upgrade kube-prom-stack with new values" microk8s helm3 upgrade kube-prom-stack kube-prometheus-stack \
      --repo https://prometheus-community.github.io/helm-charts --namespace observability \
      --version "$chart" --reuse-values --values "$values"
    cp "$values" "$applied"
  else
    log "observability already enabled with these values"
  fi
fi

wait_ready "after the addons"
log "addons ready"
