#!/usr/bin/env bash
# `make e2e`: a real single-node Kubernetes cluster on this machine, used and torn down.
#   1. tools     kube-apiserver, etcd, kubelet, kube-controller-manager, kube-scheduler, kube-proxy, kubectl and
#                helm, built once into the cache (test/integration/k8s-tools.sh cluster); Debian packages
#                (docker.io, containernetworking-plugins, iptables, busybox-static, debootstrap) installed when missing
#   2. images    the project's image from the real Dockerfile, the fixtures and a pause image (images.sh)
#   3. cluster   a network namespace of this run, and in it every component (node.sh): addresses of the test's
#                own choosing, Services through kube-proxy (iptables, inside the namespace only)
#   4. scenario  test/cluster/scenario.test.ts (jest, inside the namespace): docs/install.md, step by step
#   5. teardown  every process stopped by PID (also on failure or Ctrl-C), cgroups removed, namespace deleted
# Usage: bash test/cluster/e2e.sh [run|auto|up]
#   run   (make e2e) everything above; exits non-zero when anything fails
#   auto  (make test) the same, except that a machine which cannot have the cluster (not root, no Go to build
#         the binaries, no Debian packages) gets one loud line saying it was skipped, and exit 0
#   up    bring the cluster up and keep it until Ctrl-C (prints how to reach it), for debugging
set -euo pipefail
SELF=$(readlink -f "$0")
HERE=$(dirname "$SELF")
cd "$HERE/../.."
ROOT=$PWD
MODE=${1:-run}
CACHE=${AKTO_K8S_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/akto-agent-proxy}
RESULTS=$ROOT/.cache/jest-e2e-results.json
mkdir -p "$ROOT/.cache"
rm -f "$RESULTS"

# Addresses of the test's own choosing; they exist only inside the run's network namespace.
NODE_IP=10.213.0.1
SERVICE_CIDR=10.213.64.0/24
API_SERVICE_IP=10.213.64.1
POD_CIDR=10.213.128.0/24
NODE_NAME=akto-e2e-node

say() { echo "[e2e] $*" >&2; }
loud() { echo "[e2e] !!! $* !!!" >&2; }
PHASES=()
phase_start() { PHASE=$1 PHASE_T0=$SECONDS; say "--- $1"; }
phase_end() { PHASES+=("$PHASE $((SECONDS - PHASE_T0)) s"); }

# ------------------------------------------------------------------ prerequisites

# What this machine cannot provide: under make test one loud line and no failure; under make e2e a failure.
unavailable() {
  if [[ $MODE == auto ]]; then loud "make e2e SKIPPED: $*"; exit 0; fi
  say "cannot run: $*"; exit 1
}
[[ $(id -u) == 0 ]] || unavailable "it needs root (network namespace, mounts)"
TOOLS_ENV=$CACHE/k8s-cluster-tools.env

install_packages() {
  local missing=()
  command -v containerd >/dev/null && command -v runc >/dev/null && command -v containerd-shim-runc-v2 >/dev/null || missing+=(containerd runc)
  docker info >/dev/null 2>&1 || command -v dockerd >/dev/null || missing+=(docker.io)
  [[ -x /usr/lib/cni/bridge ]] || missing+=(containernetworking-plugins)
  command -v iptables >/dev/null || missing+=(iptables)
  [[ -x /bin/busybox ]] && ! ldd /bin/busybox >/dev/null 2>&1 || missing+=(busybox-static)
  command -v nsenter >/dev/null && command -v unshare >/dev/null || missing+=(util-linux)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  [[ ${#missing[@]} == 0 ]] && return 0
  say "installing Debian packages: ${missing[*]}"
  # No service may start on the host during the install (docker.io's postinst would start a dockerd that
  # rewrites the host's iptables).
  local guard=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && guard=1; fi
  local rc=0
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$CACHE/e2e/apt.log" 2>&1 || rc=$?
  [[ $guard == 1 ]] && rm -f /usr/sbin/policy-rc.d
  [[ $rc == 0 ]] || { tail -20 "$CACHE/e2e/apt.log" >&2; say "apt-get install failed"; return 1; }
}

# ------------------------------------------------------------------ one run: its directory, namespace, cgroups

RUN_ID=$(printf '%05d' $$)
RUN=/tmp/akto-e2e-$RUN_ID
NETNS=akto-e2e-$RUN_ID
CGROUP_ROOT=/akto-e2e-$RUN_ID
NODE_PID=

in_netns() { nsenter --net="/run/netns/$1" -- "${@:2}"; }

# PIDs (other than this script) whose command line contains $1, a path unique to one run.
pids_mentioning() {
  local p
  for p in /proc/[0-9]*; do
    [[ ${p#/proc/} == "$$" || ${p#/proc/} == "$BASHPID" ]] && continue
    grep -qsaF -- "$1" "$p/cmdline" && echo "${p#/proc/}"
  done
  return 0
}

# Stops what a run left behind, by the PIDs and names it recorded; safe to call twice and for a dead run.
cleanup_run() {
  local -
  set +e
  local run=$1 id=${1##*-} pid h i dir
  local netns=akto-e2e-$id cgroot=/akto-e2e-$id
  pid=$(cat "$run/node.pid" 2>/dev/null || true)
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 600; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  # Anything still alive: components, pod processes (the pids hierarchy lists every process of a pod) and any
  # process whose command line names the run's directory (containerd's shims).
  for pid in $(cat "$run"/pids/* 2>/dev/null) $(find "/sys/fs/cgroup/pids$cgroot" -name cgroup.procs -exec cat {} + 2>/dev/null) \
    $(pids_mentioning "$run/"); do
    kill -KILL "$pid" 2>/dev/null || true
  done
  for h in /sys/fs/cgroup/*/; do
    [[ -d $h${cgroot#/} ]] || continue
    for ((i = 0; i < 50; i++)); do
      find "$h${cgroot#/}" -depth -type d -exec rmdir {} + 2>/dev/null
      [[ -d $h${cgroot#/} ]] || break
      sleep 0.1
    done
  done
  [[ -e /run/netns/$netns ]] && ip netns delete "$netns"
  # The mount points node.sh had to create on the host, and the shim directory of images.sh's dockerd (empty
  # directories, deepest first). Another live run has its own private
  # mounts on them, and removing a mount point detaches those: leave them to the last run.
  if ! other_live_runs "$run"; then
    while read -r dir; do rmdir "$dir" 2>/dev/null || true; done < <(sort -ru "$run/created-dirs" 2>/dev/null)
  fi
  rm -rf "$run"
}

other_live_runs() {
  local other owner
  for other in /tmp/akto-e2e-[0-9]*; do
    [[ $other == "$1" ]] && continue
    owner=$(cat "$other/owner" 2>/dev/null) && kill -0 "$owner" 2>/dev/null && return 0
  done
  return 1
}

# Runs whose e2e script is gone (killed hard): leave nothing of them behind either.
sweep_stale() {
  local run owner
  for run in /tmp/akto-e2e-[0-9]*; do
    [[ -d $run && $run != "$RUN" ]] || continue
    owner=$(cat "$run/owner" 2>/dev/null || true)
    [[ -n $owner ]] && kill -0 "$owner" 2>/dev/null && continue
    say "removing what a stale run left: $run"
    cleanup_run "$run"
  done
  for run in $(ip netns list 2>/dev/null | awk '$1 ~ /^akto-e2e-[0-9]+$/ {print $1}'); do
    [[ -d /tmp/$run ]] || ip netns delete "$run"
  done
}

teardown() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  phase_start teardown
  cleanup_run "$RUN"
  local left
  left=$(pids_mentioning "$RUN/" | tr '\n' ' ')
  [[ -z $left ]] || { loud "processes of $RUN still alive: $left"; rc=1; }
  [[ ! -e /run/netns/$NETNS ]] || { loud "network namespace $NETNS still exists"; rc=1; }
  phase_end
  # A run that failed before the scenario still counts in make test's totals line.
  if [[ $rc != 0 && ! -s $RESULTS ]]; then
    echo '{"numPassedTests":0,"numFailedTests":1,"numPendingTests":0,"numTodoTests":0,"testResults":[]}' >"$RESULTS"
  fi
  say "timings: $(IFS=';'; echo "${PHASES[*]}")"
  [[ $rc == 0 ]] && say "nothing left behind" || say "FAILED (exit $rc)"
  exit "$rc"
}

# ------------------------------------------------------------------ configuration of the run

write_certs() {
  local pki=$RUN/pki
  mkdir -p "$pki"
  ( cd "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=akto-e2e-ca 2>/dev/null
    issue() { # name, subject, extensions
      openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -subj "$2" 2>/dev/null |
        openssl x509 -req -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -out "$1.crt" -extfile <(printf '%b' "$3") 2>/dev/null
    }
    issue apiserver /CN=kube-apiserver "subjectAltName=IP:$NODE_IP,IP:$API_SERVICE_IP,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost\nextendedKeyUsage=serverAuth"
    issue apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "extendedKeyUsage=clientAuth"
    openssl genrsa -out sa.key 2048 2>/dev/null && openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    : >tokens.csv
    local user
    for user in admin,system:masters kubelet,system:nodes kcm, scheduler, kube-proxy,; do
      local name=${user%%,*} group=${user#*,} token
      token=$(openssl rand -hex 24)
      echo "$token" >"$name.token"
      case $name in
        admin) echo "$token,admin,admin,\"$group\"" ;;
        kubelet) echo "$token,system:node:$NODE_NAME,kubelet,\"$group\"" ;;
        kcm) echo "$token,system:kube-controller-manager,kcm" ;;
        scheduler) echo "$token,system:kube-scheduler,scheduler" ;;
        kube-proxy) echo "$token,system:kube-proxy,kube-proxy" ;;
      esac >>tokens.csv
    done
    chmod 600 ./*.key ./*.token tokens.csv )
}

kubeconfig() { # file, token file
  cat >"$RUN/$1" <<EOF
apiVersion: v1
kind: Config
current-context: e2e
clusters: [{name: e2e, cluster: {server: "https://$NODE_IP:6443", certificate-authority: "$RUN/pki/ca.crt"}}]
users: [{name: e2e, user: {tokenFile: "$RUN/pki/$2"}}]
contexts: [{name: e2e, context: {cluster: e2e, user: e2e}}]
EOF
}

write_config() {
  mkdir -p "$RUN"/{cni,cni-ipam,pod-logs,kubelet,kcm,logs}
  echo $$ >"$RUN/owner"
  write_certs
  kubeconfig admin.kubeconfig admin.token
  kubeconfig kubelet.kubeconfig kubelet.token
  kubeconfig kcm.kubeconfig kcm.token
  kubeconfig scheduler.kubeconfig scheduler.token
  kubeconfig kube-proxy.kubeconfig kube-proxy.token
  # shellcheck source=/dev/null
  source "$TOOLS_ENV"
  # The run's binaries in one place (also on the scenario's PATH).
  mkdir -p "$RUN/bin"
  ln -s "$KUBE_APISERVER_BIN" "$RUN/bin/kube-apiserver"
  ln -s "$ETCD_BIN" "$RUN/bin/etcd"
  ln -s "$HELM_BIN" "$RUN/bin/helm"
  local b
  for b in kubelet kube-controller-manager kube-scheduler kube-proxy kubectl; do ln -s "$KUBE_NODE_DIR/$b" "$RUN/bin/$b"; done
  cat >"$RUN/cluster.env" <<EOF
NODE_IP=$NODE_IP
NODE_NAME=$NODE_NAME
SERVICE_CIDR=$SERVICE_CIDR
POD_CIDR=$POD_CIDR
CGROUP_ROOT=$CGROUP_ROOT
BIN=$RUN/bin
EOF

  # Pod creates at Metadata level: a webhook that failed open leaves its mark there.
  cat >"$RUN/audit-policy.yaml" <<EOF
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  verbs: [create]
  resources: [{group: "", resources: [pods]}]
- level: None
EOF

  # containerd of this run only: own root, state and socket; the sandbox image built here; the settings
  # docs/../real-cluster.md measured (oom_score_adj refused here, native snapshotter, cgroupfs).
  source "$RUN/images.env"
  cat >"$RUN/containerd.toml" <<EOF
version = 2
root = "$RUN/containerd/root"
state = "$RUN/containerd/state"
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.overlayfs"]
[grpc]
  address = "$RUN/containerd/containerd.sock"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$RUN/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "docker.io/library/$PAUSE_REF"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$RUN/cni"
EOF
  cat >"$RUN/cni/10-akto-e2e.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "akto-e2e", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$RUN/cni-ipam"}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
EOF
  # No cluster DNS add-on: pods resolve names through /etc/hosts (hostAliases); no nameserver answers.
  echo "options timeout:1 attempts:1" >"$RUN/resolv.conf"
  cat >"$RUN/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://$RUN/containerd/containerd.sock
address: $NODE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication: {anonymous: {enabled: false}, webhook: {enabled: false}, x509: {clientCAFile: $RUN/pki/ca.crt}}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
cgroupsPerQOS: true
cgroupRoot: $CGROUP_ROOT
enforceNodeAllocatable: []
failCgroupV1: false
failSwapOn: false
protectKernelDefaults: true
oomScoreAdj: 0
resolvConf: $RUN/resolv.conf
podLogsDir: $RUN/pod-logs
localStorageCapacityIsolation: false
evictionHard: {memory.available: "1Mi", nodefs.available: "1%", nodefs.inodesFree: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
EOF
  cat >"$RUN/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: $RUN/kube-proxy.kubeconfig}
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_CIDR
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
oomScoreAdj: 0
iptables: {masqueradeAll: true}
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
}

# ------------------------------------------------------------------ bring-up

kc() { in_netns "$NETNS" "$RUN/bin/kubectl" --kubeconfig "$RUN/admin.kubeconfig" "$@"; }

# Polls "$@" every second until it succeeds; gives up after $1 seconds naming what it waited for ($2).
wait_for() {
  local limit=$1 what=$2 t0=$SECONDS; shift 2
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS - t0 > limit)); then say "timed out after $limit s waiting for $what"; return 1; fi
    node_alive || { say "node.sh exited while waiting for $what"; return 1; }
    sleep 1
  done
  say "$what ($((SECONDS - t0)) s)"
}
node_alive() { [[ -n $NODE_PID ]] && kill -0 "$NODE_PID" 2>/dev/null; }
node_ready() { [[ $(kc get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}') == True ]]; }
node_untainted() { [[ -z $(kc get node "$NODE_NAME" -o 'jsonpath={.spec.taints}') ]]; }
ctr_import() { ctr --address "$RUN/containerd/containerd.sock" -n k8s.io images import --snapshotter native "$1" >/dev/null; }

cluster_logs() {
  local f
  for f in "$RUN"/logs/*.log; do
    [[ $f == */audit.log ]] && continue
    echo "----- $(basename "$f") (last 25 lines)" >&2
    tail -25 "$f" >&2
  done
}

cluster_up() {
  ip netns add "$NETNS"
  unshare --mount --propagation slave -- nsenter --net="/run/netns/$NETNS" -- bash "$HERE/node.sh" "$RUN" $$ >"$RUN/logs/node.log" 2>&1 &
  NODE_PID=$!
  echo "$NODE_PID" >"$RUN/node.pid"
  wait_for 30 "containerd answers" ctr --address "$RUN/containerd/containerd.sock" version || return 1
  local tar
  source "$RUN/images.env"
  for tar in "$PAUSE_TAR" "$IMAGE_TAR" "$FIXTURES_TAR"; do ctr_import "$tar" || { say "import of $tar failed"; return 1; }; done
  say "images imported into containerd"
  wait_for 90 "kube-apiserver ready" kc get --raw /readyz || return 1
  wait_for 120 "node $NODE_NAME Ready" node_ready || return 1
  wait_for 60 "node untainted" node_untainted || return 1
  wait_for 60 "default service account" kc -n default get serviceaccount default || return 1
  wait_for 60 "kubernetes Service endpoints" kc -n default get endpointslices -l kubernetes.io/service-name=kubernetes -o name || return 1
}

# ------------------------------------------------------------------ main

mkdir -p "$CACHE/e2e"
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

phase_start tools
sweep_stale
install_packages || unavailable "the Debian packages could not be installed (see $CACHE/e2e/apt.log)"
bash test/integration/k8s-tools.sh cluster
[[ -f $TOOLS_ENV ]] || unavailable "the cluster binaries could not be built (Go and the Go module proxy; see the lines above)"
phase_end

mkdir -p "$RUN"
echo $$ >"$RUN/owner"
phase_start images
bash "$HERE/images.sh" "$RUN"
phase_end

phase_start cluster
write_config
cluster_up || { cluster_logs; exit 1; }
phase_end

if [[ $MODE == up ]]; then
  say "cluster up. In another shell:"
  say "  nsenter --net=/run/netns/$NETNS -- $RUN/bin/kubectl --kubeconfig $RUN/admin.kubeconfig get pods -A"
  say "Ctrl-C tears it down."
  while node_alive; do sleep 2; done
  exit 1
fi

phase_start scenario
source "$RUN/images.env"
set +e
AKTO_E2E_RUN=$RUN AKTO_E2E_IMAGE=$IMAGE_REF AKTO_E2E_FIXTURES=$FIXTURES_REF AKTO_E2E_IMAGE_SIZE=$IMAGE_SIZE \
  AKTO_E2E_BASE_SIZE=$BASE_SIZE PATH="$RUN/bin:$PATH" \
  in_netns "$NETNS" node node_modules/.bin/jest --runInBand --ci --json --outputFile="$RESULTS" test/cluster
rc=$?
set -e
phase_end
[[ $rc == 0 ]] || { cluster_logs; exit "$rc"; }
