#!/usr/bin/env bash
# Prints the address the Kubernetes API server advertises, as the cluster
# itself records it: the endpoints of the EndpointSlice of the `kubernetes`
# Service (namespace default, label kubernetes.io/service-name=kubernetes).
# Kong's NetworkPolicy allows its controller that address on 16443 (Calico
# checks egress after kube-proxy's DNAT of 10.152.183.1:443, so it sees this
# address, not the ClusterIP).
#
# Why not sshPrivateIp or the VM's private IP: MicroK8s sets no
# --advertise-address (canonical/microk8s 1.35
# microk8s-resources/default-args/kube-apiserver), so the API server
# advertises the address of the host's default interface (k8s.io/apiserver
# v0.35.4 pkg/server/options/server_run_options.go, --advertise-address),
# which on a multi-homed host (a Vagrant VM: NAT plus host-only) is not the
# address we were given.
#
# Output on stdout, and only this (infra/cluster.ParseAPIAddress reads it):
#   advertise-address=<ip>   one line per endpoint address
#   advertise-port=<port>    one line per port of the slice
# Progress and errors go to stderr. Read-only.
#
# Waits up to TIMEOUT seconds (default 300) for the slice to name an address
# and a port (the API server writes it shortly after it starts, and
# enable-addons.sh may just have restarted it), trying every INTERVAL seconds
# (default 2); each kubectl call is bounded by CMD_TIMEOUT (default 30).
set -euo pipefail
timeout_s="${TIMEOUT:-300}"
interval="${INTERVAL:-2}"
cmd_timeout="${CMD_TIMEOUT:-30}"

# The jsonpath, one line per port and per address (scripts_test.go runs it
# through kubectl's jsonpath engine on an EndpointSlice).
query='{range .items[*]}{range .ports[*]}port={.port}{"\n"}{end}{range .endpoints[*]}{range .addresses[*]}address={@}{"\n"}{end}{end}{end}'
slice='EndpointSlice default/kubernetes (label kubernetes.io/service-name=kubernetes)'

log() { echo "[api-address] $*" >&2; }

err=$(mktemp)
trap 'rm -f "$err"' EXIT

deadline=$((SECONDS + timeout_s))
last=''
addrs='' ports=''
while :; do
  if out=$(timeout -k 5 "$cmd_timeout" microk8s kubectl get endpointslices -n default \
    -l kubernetes.io/service-name=kubernetes -o "jsonpath=$query" 2>"$err"); then
    addrs=$(sed -n 's/^address=//p' <<<"$out")
    ports=$(sed -n 's/^port=//p' <<<"$out")
    if [ -n "$addrs" ] && [ -n "$ports" ]; then
      break
    fi
    last="the slice names no address and port yet"
  else
    last="kubectl failed: $(tail -n 1 "$err")"
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    log "gave up after ${timeout_s}s waiting for the API server's advertised address in $slice; last: $last"
    exit 1
  fi
  log "waiting for the API server's address in $slice ($last)"
  sleep "$interval"
done

for a in $addrs; do echo "advertise-address=$a"; done
for p in $ports; do echo "advertise-port=$p"; done
log "the API server advertises $(tr '\n' ' ' <<<"$addrs")on $(tr '\n' ' ' <<<"$ports")"
