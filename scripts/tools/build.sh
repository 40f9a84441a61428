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

# Versions the binaries report. The CLI's comes from the root go.mod
# (scripts/tools/pulumi-version.sh, which the workflows use too).
PULUMI_VERSION=$("$here/pulumi-version.sh")
KUBERNETES_PROVIDER_VERSION=4.32.0

log() { printf '[tools] %s\n' "$*" >&2; }

# stamp NAME: a hash of everything that decides the build's output.
stamp() {
  (cd "$here/$1" && cat go.mod go.sum ./*.go 2>/dev/null; go version; echo "$PULUMI_VERSION $KUBERNETES_PROVIDER_VERSION") | sha256sum | cut -c1-16
}

# coldBuild: how long each tool took from empty module and build caches
# on the 2-core CI machine (README), to say how long the wait is.
declare -A coldBuild=([pulumi]="6 min" [kubernetes-provider]="21 min" [kube]="13 min" [kwok]="2 min" [etcd]="2 min of compiling, plus downloads")

mins() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

# progress NAME WHAT TOTAL: reads what go prints while it works and says, every
# 15 s, how far it is: modules downloaded ("go: downloading" lines) or
# packages compiled (go build -v prints each one). Anything else go prints
# (errors, warnings) goes straight through.
progress() {
  local name=$1 what=$2 total=$3 n=0 start=$SECONDS last=$SECONDS line
  while :; do
    if IFS= read -r -t 5 line; then
      case $line in
        "go: downloading "*) [ "$what" != modules ] || n=$((n + 1)) ;;
        *" "* | *.go:* | "#"*) printf '%s\n' "$line" >&2 ;;
        *) [ "$what" != packages ] || n=$((n + 1)) ;;
      esac
    elif [ $? -le 128 ]; then
      break # end of input; above 128 is read's timeout
    fi
    if [ $((SECONDS - last)) -ge "${TOOLS_PROGRESS_EVERY:-15}" ]; then
      log "$name: $n of up to $total $what, $(mins $((SECONDS - start))) so far (cold, this took about ${coldBuild[$name]} on the 2-core CI machine)"
      last=$SECONDS
    fi
  done
  [ "$what" != packages ] || log "$name: $n packages compiled in $(mins $((SECONDS - start)))"
}

# build NAME OUTPUTS... -- GO BUILD FLAGS... -- PACKAGES...: skipped when
# every output exists and was built from the same stamp. Otherwise it
# downloads the modules (go list -deps), then compiles, saying how far each
# has come.
build() {
  local name=$1; shift
  local outputs=() flags=() pkgs=()
  while [ "$1" != "--" ]; do outputs+=("$1"); shift; done
  shift
  while [ "$1" != "--" ]; do flags+=("$1"); shift; done
  shift
  pkgs=("$@")
  local want have
  want=$(stamp "$name")
  have=$(cat "$bin/.$name.stamp" 2>/dev/null || true)
  local ok=1
  for o in "${outputs[@]}"; do [ -x "$bin/$o" ] || ok=0; done
  if [ "$ok" = 1 ] && [ "$want" = "$have" ]; then
    log "$name: up to date (${outputs[*]})"
    return
  fi
  log "$name: building ${outputs[*]}; cold, this took about ${coldBuild[$name]} on the 2-core CI machine"
  local start=$SECONDS deps modules
  deps=$(mktemp)
  modules=$(grep -vc '/go.mod ' "$here/$name/go.sum" || true)
  (cd "$here/$name" && go list -deps "${pkgs[@]}" 2>&1 >"$deps" | progress "$name" modules "$modules")
  (cd "$here/$name" && go build -trimpath -v "${flags[@]}" "${pkgs[@]}" 2>&1 | progress "$name" packages "$(wc -l <"$deps")")
  rm -f "$deps"
  echo "$want" > "$bin/.$name.stamp"
  log "$name: built in $(mins $((SECONDS - start)))"
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
      build pulumi pulumi -- -o "$bin/pulumi" \
        -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
        -- github.com/pulumi/pulumi/pkg/v3/cmd/pulumi ;;
    kubernetes-provider)
      (cd "$here/kubernetes-provider" && go mod download github.com/pulumi/pulumi-kubernetes/provider/v4)
      provider_schema
      build kubernetes-provider pulumi-resource-kubernetes -- -o "$bin/pulumi-resource-kubernetes" \
        -ldflags "-X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$KUBERNETES_PROVIDER_VERSION" -- . ;;
    kube)
      build kube kube-apiserver kube-controller-manager kube-scheduler kubectl -- -o "$bin/" -- \
        k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler \
        k8s.io/kubernetes/cmd/kubectl ;;
    kwok)
      build kwok kwok -- -o "$bin/kwok" -- sigs.k8s.io/kwok/cmd/kwok ;;
    etcd)
      build etcd etcd -- -o "$bin/etcd" -- go.etcd.io/etcd/server/v3 ;;
    *) log "unknown tool $t (want pulumi, kubernetes-provider, kube, kwok, etcd)"; exit 2 ;;
  esac
done
