#!/usr/bin/env bash
# Installs MicroK8s from a pinned snap channel, puts PUBLIC_IP in the API
# server certificate (so a kubeconfig pointing at it verifies TLS), lets
# SSH_USER use microk8s without sudo, and waits until the node is ready.
# Idempotent: on a host that already matches, it changes nothing.
#
# env: CHANNEL (e.g. 1.32/stable), PUBLIC_IP, SSH_USER,
#      SNAP_DATA (default /var/snap/microk8s/current), READY_TIMEOUT (default 600)
set -euo pipefail
: "${CHANNEL:?CHANNEL (snap channel, e.g. 1.32/stable) is required}"
: "${PUBLIC_IP:?PUBLIC_IP is required}"
: "${SSH_USER:?SSH_USER is required}"
snap_data="${SNAP_DATA:-/var/snap/microk8s/current}"
ready_timeout="${READY_TIMEOUT:-600}"

log() { echo "[install-microk8s] $*"; }

# 1. The snap, on the pinned channel.
if ! snap list microk8s >/dev/null 2>&1; then
  log "installing microk8s from $CHANNEL"
  snap install microk8s --classic --channel="$CHANNEL"
else
  tracking=$(snap list microk8s | awk 'NR==2 {print $4}')
  if [ "$tracking" != "$CHANNEL" ]; then
    log "moving microk8s from $tracking to $CHANNEL"
    snap refresh microk8s --channel="$CHANNEL"
  else
    log "microk8s already tracks $CHANNEL"
  fi
fi

# 2. The public IP in the API server certificate.
template="$snap_data/certs/csr.conf.template"
if ! grep -qE "^IP\.[0-9]+ = ${PUBLIC_IP//./\\.}\$" "$template"; then
  log "adding $PUBLIC_IP to the API server certificate's names"
  next=$(grep -oE '^IP\.[0-9]+' "$template" | cut -d. -f2 | sort -n | tail -n1)
  next=$(( ${next:-0} + 1 ))
  # Insert after the last IP.N line of [ alt_names ].
  awk -v line="IP.$next = $PUBLIC_IP" '
    { lines[NR] = $0 }
    /^IP\.[0-9]+ = / { last = NR }
    END { for (i = 1; i <= NR; i++) { print lines[i]; if (i == last) print line } }
  ' "$template" > "$template.new"
  mv "$template.new" "$template"
fi
if ! openssl x509 -noout -ext subjectAltName -in "$snap_data/certs/server.crt" 2>/dev/null | grep -qE "IP Address:${PUBLIC_IP//./\\.}(,|\$)"; then
  log "reissuing the API server certificate"
  microk8s refresh-certs --cert server.crt
fi

# 3. The SSH user may run microk8s without sudo.
if ! id -nG "$SSH_USER" | tr ' ' '\n' | grep -qx microk8s; then
  log "adding $SSH_USER to the microk8s group"
  usermod -a -G microk8s "$SSH_USER"
fi

log "waiting up to ${ready_timeout}s for the node to be ready"
if ! microk8s status --wait-ready --timeout "$ready_timeout" >/dev/null; then
  echo "[install-microk8s] MicroK8s not ready after ${ready_timeout}s; run 'microk8s inspect' on the host" >&2
  exit 1
fi
log "microk8s ready"
