#!/usr/bin/env bash
# Enables MicroK8s addons that are not enabled yet, in the order given, and
# waits for the cluster to settle. Idempotent: enabled addons are skipped.
#
# env: ADDONS — space-separated, each "name" or "name:argument", e.g.
#      "dns hostpath-storage metallb:10.0.1.5-10.0.1.5 observability"
#      READY_TIMEOUT (default 900)
set -euo pipefail
: "${ADDONS:?ADDONS is required}"
ready_timeout="${READY_TIMEOUT:-900}"

log() { echo "[enable-addons] $*"; }

for addon in $ADDONS; do
  name="${addon%%:*}"
  state=$(microk8s status --addon "$name" 2>/dev/null || true)
  if [ "$state" = "enabled" ]; then
    log "$name already enabled"
    continue
  fi
  log "enabling $addon"
  if ! microk8s enable "$addon"; then
    echo "[enable-addons] 'microk8s enable $addon' failed" >&2
    exit 1
  fi
done

log "waiting up to ${ready_timeout}s for the cluster"
microk8s status --wait-ready --timeout "$ready_timeout" >/dev/null
log "addons ready"
