#!/usr/bin/env bash
# Builds the local sandbox's tools from pinned Go modules into .tools/bin:
#   pulumi                      Pulumi CLI (github.com/pulumi/pulumi/pkg/v3)
#   pulumi-resource-kubernetes  the Kubernetes provider
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl (k8s.io/kubernetes)
#   kwok                        fake nodes that run pods "Ready"
#   etcd                        the API server's store (go.etcd.io/etcd/server/v3 3.6)
# Each tool is rebuilt only when its wrapper module (scripts/tools/<name>) or
# the Go version changes, so a second run is a no-op.
#
# usage: scripts/tools/build.sh [tool ...]    (default: all)
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/scripts/tools"
bin="${TOOLS_BIN:-$root/.tools/bin}"
mkdir -p "$bin"

# Versions the binaries report; they match the modules pinned in go.mod.
PULUMI_VERSION=3.274.1
KUBERNETES_PROVIDER_VERSION=4.32.0

log() { printf '[tools] %s\n' "$*" >&2; }

# stamp NAME: a hash of everything that decides the build's output.
stamp() {
  (cd "$here/$1" && cat go.mod go.sum ./*.go 2>/dev/null; go version; echo "$PULUMI_VERSION $KUBERNETES_PROVIDER_VERSION") | sha256sum | cut -c1-16
}

# build NAME OUTPUTS... -- GO BUILD ARGS: skipped when every output exists
# and was built from the same stamp.
build() {
  local name=$1; shift
  local outputs=()
  while [ "$1" != "--" ]; do outputs+=("$1"); shift; done
  shift
  local want have
  want=$(stamp "$name")
  have=$(cat "$bin/.$name.stamp" 2>/dev/null || true)
  local ok=1
  for o in "${outputs[@]}"; do [ -x "$bin/$o" ] || ok=0; done
  if [ "$ok" = 1 ] && [ "$want" = "$have" ]; then
    log "$name: up to date (${outputs[*]})"
    return
  fi
  log "$name: building ${outputs[*]} (a cold build takes minutes) ..."
  local start=$SECONDS
  (cd "$here/$name" && "$@")
  echo "$want" > "$bin/.$name.stamp"
  log "$name: built in $((SECONDS - start))s"
}

provider_schema() {
  # go:embed cannot reach the module cache: copy the provider's schema files
  # next to the wrapper's main.go (they are git-ignored).
  local dir
  dir=$(cd "$here/kubernetes-provider" && go list -m -f '{{.Dir}}' github.com/pulumi/pulumi-kubernetes/provider/v4)
  install -m 0644 "$dir/cmd/pulumi-resource-kubernetes/schema.json" \
    "$dir/cmd/pulumi-resource-kubernetes/terraform-mapping.json" "$here/kubernetes-provider/"
}

want=("$@")
[ ${#want[@]} -gt 0 ] || want=(pulumi kubernetes-provider kube kwok etcd)
for t in "${want[@]}"; do
  case "$t" in
    pulumi)
      build pulumi pulumi -- go build -trimpath -o "$bin/pulumi" \
        -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
        github.com/pulumi/pulumi/pkg/v3/cmd/pulumi ;;
    kubernetes-provider)
      (cd "$here/kubernetes-provider" && go mod download github.com/pulumi/pulumi-kubernetes/provider/v4)
      provider_schema
      build kubernetes-provider pulumi-resource-kubernetes -- go build -trimpath -o "$bin/pulumi-resource-kubernetes" \
        -ldflags "-X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$KUBERNETES_PROVIDER_VERSION" . ;;
    kube)
      build kube kube-apiserver kube-controller-manager kube-scheduler kubectl -- go build -trimpath -o "$bin/" \
        k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler \
        k8s.io/kubernetes/cmd/kubectl ;;
    kwok)
      build kwok kwok -- go build -trimpath -o "$bin/kwok" sigs.k8s.io/kwok/cmd/kwok ;;
    etcd)
      build etcd etcd -- go build -trimpath -o "$bin/etcd" go.etcd.io/etcd/server/v3 ;;
    *) log "unknown tool $t (want pulumi, kubernetes-provider, kube, kwok, etcd)"; exit 2 ;;
  esac
done
