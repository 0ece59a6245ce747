#!/usr/bin/env bash
# The one node of `make e2e`'s cluster: etcd, kube-apiserver, containerd, kube-controller-manager, kube-scheduler,
# kube-proxy and kubelet. e2e.sh starts it as
#   unshare --mount --propagation slave -- nsenter --net=/run/netns/<netns> -- bash node.sh <run-dir> <e2e-pid>
# so every component shares the network namespace the test created and one PRIVATE mount namespace: kubelet's
# volume mounts are visible to containerd, and every mount below disappears with these processes instead of
# landing in the host's mount table. Configuration comes from <run-dir> (written by e2e.sh).
# Each PID goes to <run-dir>/pids/<name>. On TERM/INT, or when the e2e script that started it is gone, it stops
# everything it started, by PID, in reverse order, and exits.
set -uo pipefail
RUN=$1
OWNER=$2
# shellcheck source=/dev/null
source "$RUN/cluster.env"
cd "$RUN" || exit 1
mkdir -p pids logs
PKI=$RUN/pki

say() { echo "[node] $*"; }

# Hard-coded host paths become private scratch space: shim sockets (/run/containerd/s), the CNI result cache
# (/var/lib/cni) and kubelet's log symlinks (/var/log/containers). A missing mount point is created on the host
# and recorded, so e2e.sh removes it again.
private_dir() {
  if [[ ! -d $1 ]]; then mkdir -p "$1" && echo "$1" >>"$RUN/created-dirs"; fi
  mount -t tmpfs -o mode=0755,size=64m akto-e2e "$1"
}
private_dir /run/containerd
private_dir /var/lib/cni
private_dir /var/log/containers

# kubelet sets vm.overcommit_memory, kernel.panic, kernel.panic_on_oops, ... to its preferred values at start:
# those are host-wide, not per network namespace. It is shown the values it wants (protectKernelDefaults: true
# makes it refuse rather than write, should one still differ), so the host's kernel settings stay untouched.
mkdir -p sysctl
for kv in vm/overcommit_memory=1 vm/panic_on_oom=0 kernel/panic=10 kernel/panic_on_oops=1 \
  kernel/keys/root_maxkeys=1000000 kernel/keys/root_maxbytes=25000000; do
  key=${kv%%=*} file=sysctl/${kv%%=*}
  mkdir -p "$(dirname "$file")" && echo "${kv#*=}" >"$file"
  mount --bind "$RUN/$file" "/proc/sys/$key"
done

# Pods run under a cgroup root of this run in every v1 hierarchy (removed by e2e.sh).
for h in /sys/fs/cgroup/*/; do
  [[ -f $h/cgroup.procs ]] || continue
  mkdir -p "$h${CGROUP_ROOT#/}"
  if [[ -f $h/cpuset.cpus ]]; then
    cat "$h/cpuset.cpus" >"$h${CGROUP_ROOT#/}/cpuset.cpus"
    cat "$h/cpuset.mems" >"$h${CGROUP_ROOT#/}/cpuset.mems"
  fi
done

ip link set lo up
ip addr add "$NODE_IP/32" dev lo 2>/dev/null
# The namespace has no default route. Connections to a Service address need a route to leave the routing decision
# at all (kube-proxy's DNAT then re-routes them to the pod), like a node's default route: a veth pair that stays
# inside the namespace. (A route via lo would do for DNAT, but then kube-proxy's REJECT for a Service without
# endpoints sends no ICMP error back, and callers hang instead of being refused.)
ip link add akto-e2e0 type veth peer name akto-e2e1 && ip link set akto-e2e0 up && ip link set akto-e2e1 up
ip route add "$SERVICE_CIDR" dev akto-e2e0 src "$NODE_IP"

STARTED=()
start() {
  local name=$1; shift
  "$@" >"logs/$name.log" 2>&1 &
  echo $! >"pids/$name"
  STARTED+=("$name")
}

# Stops one component by PID: TERM, then KILL after $2 seconds.
stop_pid() {
  local pid=$1 grace=$2 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < grace * 10; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}

# Every process of a pod: all PIDs under the run's cgroup root (the pids hierarchy lists them all).
pod_pids() { find "/sys/fs/cgroup/pids${CGROUP_ROOT}" -name cgroup.procs -exec cat {} + 2>/dev/null; }
# containerd's shims, one per pod sandbox: their command line names this run's containerd socket.
shim_pids() { local p; for p in /proc/[0-9]*; do grep -qsaF -- "-address $RUN/containerd/containerd.sock" "$p/cmdline" && echo "${p#/proc/}"; done; }

STOPPING=0
stop_all() {
  [[ $STOPPING == 1 ]] && return
  STOPPING=1
  say "stopping"
  local i name pid
  for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
    name=${STARTED[i]}
    pid=$(cat "pids/$name" 2>/dev/null) || continue
    if [[ $name == containerd ]]; then
      # After kubelet: nothing restarts containers any more.
      for pid in $(pod_pids); do kill -KILL "$pid" 2>/dev/null; done
      for pid in $(shim_pids); do stop_pid "$pid" 3; done
      pid=$(cat "pids/$name")
    fi
    stop_pid "$pid" 10
  done
  say "stopped"
}
trap 'stop_all; exit 0' TERM INT
trap stop_all EXIT

start etcd "$BIN/etcd" --name=e2e --data-dir="$RUN/etcd" \
  --listen-client-urls=http://127.0.0.1:2379 --advertise-client-urls=http://127.0.0.1:2379 \
  --listen-peer-urls=http://127.0.0.1:2380 --initial-advertise-peer-urls=http://127.0.0.1:2380 \
  --initial-cluster=e2e=http://127.0.0.1:2380 --unsafe-no-fsync=true --log-level=warn

start kube-apiserver "$BIN/kube-apiserver" --etcd-servers=http://127.0.0.1:2379 \
  --advertise-address="$NODE_IP" --bind-address=0.0.0.0 --secure-port=6443 --cert-dir="$RUN/pki" \
  --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" --client-ca-file="$PKI/ca.crt" \
  --token-auth-file="$PKI/tokens.csv" --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
  --service-account-issuer=https://kubernetes.default.svc --service-account-key-file="$PKI/sa.pub" \
  --service-account-signing-key-file="$PKI/sa.key" --service-cluster-ip-range="$SERVICE_CIDR" --allow-privileged=true \
  --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
  --kubelet-preferred-address-types=InternalIP \
  --audit-policy-file="$RUN/audit-policy.yaml" --audit-log-path="$RUN/logs/audit.log" --profiling=false --v=1

start containerd /usr/bin/containerd --config "$RUN/containerd.toml"

start kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig="$RUN/kcm.kubeconfig" --leader-elect=false \
  --bind-address=127.0.0.1 --cert-dir="$RUN/kcm" --service-account-private-key-file="$PKI/sa.key" \
  --root-ca-file="$PKI/ca.crt" --use-service-account-credentials=true --service-cluster-ip-range="$SERVICE_CIDR" \
  --profiling=false --v=1

start kube-scheduler "$BIN/kube-scheduler" --kubeconfig="$RUN/scheduler.kubeconfig" --leader-elect=false \
  --bind-address=127.0.0.1 --profiling=false --v=1

start kube-proxy "$BIN/kube-proxy" --config="$RUN/kube-proxy.yaml" --v=1

start kubelet "$BIN/kubelet" --config="$RUN/kubelet.yaml" --kubeconfig="$RUN/kubelet.kubeconfig" \
  --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --root-dir="$RUN/kubelet" --cert-dir="$RUN/kubelet/pki" --v=1

say "started ${STARTED[*]}"
while kill -0 "$OWNER" 2>/dev/null; do sleep 2; done
say "the e2e script ($OWNER) is gone"
