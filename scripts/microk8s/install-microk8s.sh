#!/usr/bin/env bash
# Installs MicroK8s from a pinned snap channel, holds snapd's automatic
# refreshes of it, puts PUBLIC_IP (an IPv4 address or a DNS name) in the API
# server certificate (so a kubeconfig pointing at it verifies TLS), lets
# SSH_USER use microk8s without sudo, and waits until the node is ready.
# Idempotent: on a host that already matches, it changes nothing.
#
# Channel moves: the same minor (another risk level) or the next minor are
# applied with an explicit `snap refresh --channel`, which a hold does not
# block. A downgrade, or a jump over a minor, is refused before anything
# changes: Kubernetes supports neither.
#
# env: CHANNEL (e.g. 1.35/stable), PUBLIC_IP, SSH_USER,
#      SNAP_DATA (default /var/snap/microk8s/current), READY_TIMEOUT (default 600),
#      CMD_TIMEOUT (default 600: bound on each snap and refresh-certs call),
#      GRACE (default 60)
set -euo pipefail
: "${CHANNEL:?CHANNEL (snap channel, e.g. 1.35/stable) is required}"
: "${PUBLIC_IP:?PUBLIC_IP is required}"
: "${SSH_USER:?SSH_USER is required}"
snap_data="${SNAP_DATA:-/var/snap/microk8s/current}"
ready_timeout="${READY_TIMEOUT:-600}"
cmd_timeout="${CMD_TIMEOUT:-600}"
grace="${GRACE:-60}" # beyond microk8s status' own --timeout before it is killed

log() { echo "[install-microk8s] $*"; }
die() { echo "[install-microk8s] $*" >&2; exit 1; }

# bounded SECONDS WHAT CMD...: runs CMD, fails with a message naming WHAT
# when it takes longer than SECONDS.
bounded() {
  local secs="$1" what="$2" rc=0
  shift 2
  timeout -k 30 "$secs" "$@" || rc=$?
  [ "$rc" -eq 124 ] && die "gave up after ${secs}s waiting for $what ($*)"
  return "$rc"
}

# minor "1.35/stable" -> "1 35"; empty when the channel is not <major>.<minor>/...
minor() { sed -nE 's#^v?([0-9]+)\.([0-9]+)([./].*)?$#\1 \2#p' <<<"$1"; }

case "$CHANNEL" in
  *-strict/*) die "channel $CHANNEL is strictly confined (group snap_microk8s, other paths); use the classic ${CHANNEL/-strict/}" ;;
esac
read -r want_major want_minor <<<"$(minor "$CHANNEL")" || true
[ -n "${want_minor:-}" ] || die "channel $CHANNEL is not <major>.<minor>/<risk>"

# 1. The snap, on the pinned channel.
if ! snap list microk8s >/dev/null 2>&1; then
  log "installing microk8s from $CHANNEL"
  bounded "$cmd_timeout" "the microk8s snap to install" snap install microk8s --classic --channel="$CHANNEL"
else
  row=$(snap list microk8s | awk 'NR==2')
  version=$(awk '{print $2}' <<<"$row")
  tracking=$(awk '{print $4}' <<<"$row")
  read -r have_major have_minor <<<"$(minor "$version")" || true
  [ -n "${have_minor:-}" ] || die "cannot read the installed MicroK8s version from 'snap list microk8s' ($row)"
  if [ "$want_major" != "$have_major" ] || [ "$want_minor" -lt "$have_minor" ]; then
    die "refusing to move MicroK8s $version ($tracking) to $CHANNEL: Kubernetes does not support downgrades; set microk8sChannel back to $have_major.$have_minor/stable or later"
  fi
  if [ "$want_minor" -gt $((have_minor + 1)) ]; then
    die "refusing to move MicroK8s $version ($tracking) to $CHANNEL: Kubernetes upgrades one minor version at a time; set microk8sChannel to $have_major.$((have_minor + 1))/stable, run pulumi up, then continue"
  fi
  if [ "$tracking" != "$CHANNEL" ]; then
    log "moving microk8s from $tracking ($version) to $CHANNEL"
    bounded "$cmd_timeout" "the microk8s snap to refresh to $CHANNEL" snap refresh microk8s --channel="$CHANNEL"
  else
    log "microk8s already tracks $CHANNEL"
  fi
fi

# 2. No automatic refreshes: snapd would otherwise move the cluster to a new
# patch release (restarting it) whenever it likes. An explicit
# `snap refresh microk8s --channel=...` (step 1) still applies.
if ! snap list microk8s | awk 'NR==2 {print $NF}' | tr ',' '\n' | grep -qx held; then
  log "holding automatic refreshes of microk8s"
  bounded "$cmd_timeout" "snapd to hold microk8s refreshes" snap refresh --hold microk8s
fi

# 3. PUBLIC_IP in the API server certificate: an address as IP.n, a name as
# DNS.n (OpenSSL refuses a name in an IP entry).
template="$snap_data/certs/csr.conf.template"
if [[ "$PUBLIC_IP" =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
  kind=IP san="IP Address:$PUBLIC_IP"
else
  kind=DNS san="DNS:$PUBLIC_IP"
fi
if ! grep -qE "^$kind\.[0-9]+ = ${PUBLIC_IP//./\\.}\$" "$template"; then
  log "adding $PUBLIC_IP to the API server certificate's names as $kind"
  next=$(grep -oE "^$kind\.[0-9]+" "$template" | cut -d. -f2 | sort -n | tail -n1)
  next=$(( ${next:-0} + 1 ))
  # Insert after the last line of the same kind in [ alt_names ].
  awk -v line="$kind.$next = $PUBLIC_IP" -v kind="$kind" '
    { lines[NR] = $0 }
    $0 ~ "^" kind "\\.[0-9]+ = " { last = NR }
    END { for (i = 1; i <= NR; i++) { print lines[i]; if (i == last) print line } }
  ' "$template" > "$template.new"
  mv "$template.new" "$template"
fi
if ! openssl x509 -noout -ext subjectAltName -in "$snap_data/certs/server.crt" 2>/dev/null | tr ',' '\n' | sed 's/^ *//' | grep -qxF "$san"; then
  log "reissuing the API server certificate"
  bounded "$cmd_timeout" "microk8s refresh-certs to reissue server.crt" microk8s refresh-certs --cert server.crt
  openssl x509 -noout -ext subjectAltName -in "$snap_data/certs/server.crt" 2>/dev/null | tr ',' '\n' | sed 's/^ *//' | grep -qxF "$san" ||
    die "the reissued API server certificate does not name $PUBLIC_IP; see $template"
fi

# 4. The SSH user may run microk8s without sudo.
if ! id -nG "$SSH_USER" | tr ' ' '\n' | grep -qx microk8s; then
  log "adding $SSH_USER to the microk8s group"
  usermod -a -G microk8s "$SSH_USER"
fi

log "waiting up to ${ready_timeout}s for the node to be ready"
if ! timeout -k 30 $((ready_timeout + grace)) microk8s status --wait-ready --timeout "$ready_timeout" >/dev/null; then
  die "MicroK8s not ready after ${ready_timeout}s; run 'microk8s inspect' on the host"
fi
log "microk8s ready"
