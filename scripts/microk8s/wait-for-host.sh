#!/usr/bin/env bash
# Waits until a fresh VM is ready to be configured: cloud-init has finished
# (it may still be writing apt sources and SSH keys) and snapd has seeded.
# Bounded by TIMEOUT seconds; fails with a message saying what it waited for.
#
# env: TIMEOUT (default 600)
set -euo pipefail
timeout_s="${TIMEOUT:-600}"

log() { echo "[wait-for-host] $*"; }

if command -v cloud-init >/dev/null 2>&1; then
  log "waiting up to ${timeout_s}s for cloud-init"
  rc=0
  timeout "$timeout_s" cloud-init status --wait >/dev/null || rc=$?
  case "$rc" in
    0) log "cloud-init done" ;;
    2) log "cloud-init done with recoverable errors; continuing" ;;
    124) echo "[wait-for-host] cloud-init still running after ${timeout_s}s; see /var/log/cloud-init-output.log on the host" >&2; exit 1 ;;
    *) echo "[wait-for-host] cloud-init failed (exit $rc); see 'cloud-init status --long' on the host" >&2; exit 1 ;;
  esac
else
  log "no cloud-init on this host; nothing to wait for"
fi

if command -v snap >/dev/null 2>&1; then
  log "waiting for snapd to be seeded"
  if ! timeout "$timeout_s" snap wait system seed.loaded; then
    echo "[wait-for-host] snapd not seeded after ${timeout_s}s" >&2
    exit 1
  fi
else
  echo "[wait-for-host] snap is not installed; MicroK8s needs snapd (Ubuntu has it)" >&2
  exit 1
fi
log "host ready"
