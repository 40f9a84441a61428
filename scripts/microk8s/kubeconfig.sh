#!/usr/bin/env bash
# Prints MicroK8s' admin kubeconfig with its server set to the public
# address, https://PUBLIC_IP:16443 (the certificate names that address, as
# IP.n or, for a DNS name, DNS.n: see install-microk8s.sh). Read-only. Its
# output is a secret.
#
# env: PUBLIC_IP (an IPv4 address or a DNS name)
set -euo pipefail
: "${PUBLIC_IP:?PUBLIC_IP is required}"
config=$(microk8s config)
if ! grep -qE '^\s*server: https://' <<<"$config"; then
  echo "[kubeconfig] 'microk8s config' printed no server line" >&2
  exit 1
fi
sed -E "s#^(\s*server: )https://[^[:space:]]+#\1https://$PUBLIC_IP:16443#" <<<"$config"
