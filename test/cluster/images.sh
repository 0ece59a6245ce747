#!/usr/bin/env bash
# The images `make e2e` runs, built here (no registry is reachable) and kept as `docker save` tars in the cache,
# keyed by the hash of what goes into each, so a warm run needs no Docker at all:
#   akto-e2e-node:<hash>       build base (NODE_IMAGE of the Dockerfile): Debian bookworm (debootstrap minbase from
#                              the Debian mirror, like node:20-bookworm-slim without node) with the machine's own
#                              Node.js and npm and its CA bundle; the Dockerfile's model stage runs apt-get and pip in it
#   akto-e2e-node-runtime:<hash>  runtime base (RUNTIME_IMAGE): only node, glibc (libc6, libstdc++, libgcc_s),
#                              static busybox (/bin/sh, /usr/bin/env) and the CA bundle, assembled as a tar
#   akto-e2e-pause:<hash>      the pod sandbox image: busybox sleeping until TERM
#   akto-agent-proxy:e2e-<hash>  the project's Dockerfile, built with those two bases
#   akto-e2e-fixtures:<hash>   the sample agent, stub upstream and Akto receiver (test/cluster/pods), bundled
# Docker: an engine already answering is used as is; otherwise dockerd (vfs, no bridge, no iptables, no
# ip_forward: the host's network stays untouched; builds use --network host) is started in a private mount
# namespace with its data root in the cache, and stopped again by PID.
# Usage: bash test/cluster/images.sh <run-dir>     writes <run-dir>/images.env
set -euo pipefail
SELF=$(readlink -f "$0")
cd "$(dirname "$SELF")/../.."
ROOT=$PWD
RUN=$1
CACHE=${AKTO_K8S_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/akto-agent-proxy}/e2e
TARS=$CACHE/images
mkdir -p "$TARS" "$RUN"

say() { echo "[images] $*" >&2; }

# One build at a time: runs share the data root and the tars.
exec 8>"$CACHE/images.lock"
flock -w 3600 8 || { say "another run has held $CACHE/images.lock for an hour"; exit 1; }

hash_files() { sha256sum "$@" | sha256sum | cut -c1-16; }
hash_text() { sha256sum | cut -c1-16; }

NODE_BIN=$(readlink -f "$(command -v node)")
NODE_PREFIX=$(dirname "$(dirname "$NODE_BIN")")
NPM_DIR=$NODE_PREFIX/lib/node_modules/npm
BUSYBOX=/bin/busybox
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
PATH_ENV=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# ------------------------------------------------------------------ Docker, only when something must be built

DOCKERD_PID=
ensure_docker() {
  [[ -n ${DOCKER_READY:-} ]] && return 0
  if docker info >/dev/null 2>&1; then
    say "using the running Docker engine"
  else
    command -v dockerd >/dev/null || { say "dockerd not found (apt-get install docker.io)"; return 1; }
    local sock=$RUN/docker/docker.sock
    mkdir -p "$RUN/docker" "$CACHE/docker"
    echo '{}' >"$RUN/docker/daemon.json"
    say "starting dockerd (vfs, data root $CACHE/docker)"
    # Its shims make /run/containerd/s on the host: recorded for e2e.sh's clean-up when it did not exist yet.
    [[ -d /run/containerd ]] || printf '%s\n' /run/containerd /run/containerd/s >>"$RUN/created-dirs"
    unshare --mount --propagation slave -- dockerd --config-file "$RUN/docker/daemon.json" \
      --data-root "$CACHE/docker" --exec-root "$RUN/docker/exec" --pidfile "$RUN/docker/dockerd.pid" \
      -H "unix://$sock" --storage-driver vfs --bridge none --iptables=false --ip6tables=false \
      --ip-forward=false --ip-masq=false --userland-proxy=false >"$RUN/docker/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    echo "$DOCKERD_PID" >"$RUN/docker/pid"
    export DOCKER_HOST=unix://$sock
    local i
    for ((i = 0; i < 120; i++)); do
      docker info >/dev/null 2>&1 && break
      kill -0 "$DOCKERD_PID" 2>/dev/null || { tail -20 "$RUN/docker/dockerd.log" >&2; return 1; }
      sleep 0.5
    done
    docker info >/dev/null 2>&1 || { say "dockerd did not answer in 60 s"; tail -20 "$RUN/docker/dockerd.log" >&2; return 1; }
  fi
  DOCKER_READY=1
}

stop_dockerd() {
  [[ -n $DOCKERD_PID ]] || return 0
  local i containerd_pid
  containerd_pid=$(cat "$RUN/docker/exec/containerd/containerd.pid" 2>/dev/null || true)
  kill -TERM "$DOCKERD_PID" 2>/dev/null
  for ((i = 0; i < 300; i++)); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$DOCKERD_PID" 2>/dev/null || true
  [[ -z $containerd_pid ]] || kill -KILL "$containerd_pid" 2>/dev/null || true
  wait "$DOCKERD_PID" 2>/dev/null || true
  say "dockerd stopped"
  DOCKERD_PID=
}
trap stop_dockerd EXIT

# Saves image $1 to $2 (atomically) and removes the older tars of the same image and their size notes.
save_tar() {
  local ref=$1 tar=$2
  docker save "$ref" -o "$tar.tmp" && mv "$tar.tmp" "$tar"
  find "$TARS" -name "$(basename "${tar%-*}")-*" ! -name "$(basename "$tar")*" -delete
}

# ------------------------------------------------------------------ base and pause

DEBIAN_SUITE=bookworm
DEBIAN_MIRROR=http://deb.debian.org/debian
BASE_HASH=$( { echo "$DEBIAN_SUITE"; sha256sum "$NODE_BIN" "$BUSYBOX" "$CA_BUNDLE" "$NPM_DIR/package.json" /usr/local/share/ca-certificates/*.crt 2>/dev/null
  sed -n '/^add_node()/,/^}/p;/^build_base()/,/^}/p' "$SELF"; } | hash_text)
BASE_REF=akto-e2e-node:$BASE_HASH
RUNTIME_REF=akto-e2e-node-runtime:$BASE_HASH
PAUSE_HASH=$( { sha256sum "$BUSYBOX"; sed -n '/^build_pause()/,/^}/p' "$SELF"; } | hash_text)
PAUSE_REF=akto-e2e-pause:$PAUSE_HASH
PAUSE_TAR=$TARS/akto-e2e-pause-$PAUSE_HASH.tar

# Node at the path it has here (npm finds its global npmrc relative to it), npm only when $2 is "npm", the CA bundle
# and the users of the image.
add_node() {
  local root=$1 with=$2
  mkdir -p "$root"/{tmp,root,etc/ssl/certs,usr/bin} "$root$NODE_PREFIX"/{etc,lib/node_modules} "$root$(dirname "$NODE_BIN")"
  chmod 1777 "$root/tmp"
  cp "$NODE_BIN" "$root$NODE_BIN"
  [[ -e $root/usr/bin/node ]] || ln -s "$NODE_BIN" "$root/usr/bin/node"
  if [[ $with == npm ]]; then
    cp -a "$NPM_DIR" "$root$NODE_PREFIX/lib/node_modules/"
    ln -sf "$NODE_PREFIX/lib/node_modules/npm/bin/npm-cli.js" "$root$NODE_PREFIX/bin/npm"
    ln -sf "$NODE_PREFIX/lib/node_modules/npm/bin/npx-cli.js" "$root$NODE_PREFIX/bin/npx"
  fi
  cp "$CA_BUNDLE" "$root/etc/ssl/certs/ca-certificates.crt"
  # npm (and pip, once ca-certificates regenerates the bundle) behind this machine's TLS-inspecting egress trust the
  # same authorities as node.
  echo "cafile=/etc/ssl/certs/ca-certificates.crt" >"$root$NODE_PREFIX/etc/npmrc"
  if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    mkdir -p "$root/usr/local/share/ca-certificates" && cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  fi
  grep -q '^nonroot:' "$root/etc/passwd" 2>/dev/null || echo 'nonroot:x:65532:65532:nonroot:/nonexistent:/bin/false' >>"$root/etc/passwd"
  grep -q '^nonroot:' "$root/etc/group" 2>/dev/null || echo 'nonroot:x:65532:' >>"$root/etc/group"
}

# Build base: Debian with apt-get, as the Dockerfile's default base has it. Runtime base: only what node and ONNX
# Runtime load (every shared library of glibc, libstdc++ and libgcc_s as Debian packages them).
build_base() {
  local root=$RUN/base-root lib
  if ! docker image inspect "$BASE_REF" >/dev/null 2>&1; then
    say "debootstrap $DEBIAN_SUITE (minbase) from $DEBIAN_MIRROR, then node $(node --version) and npm $(node -p "require('$NPM_DIR/package.json').version")"
    rm -rf "$root"
    debootstrap --variant=minbase "$DEBIAN_SUITE" "$root" "$DEBIAN_MIRROR" >"$RUN/debootstrap.log" 2>&1 ||
      { tail -20 "$RUN/debootstrap.log" >&2; say "debootstrap failed: $RUN/debootstrap.log"; return 1; }
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    add_node "$root" npm
    tar -C "$root" -cf - . | docker import -c "ENV PATH=$PATH_ENV" \
      -c "ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt" -c 'CMD ["node"]' - "$BASE_REF" >/dev/null
    rm -rf "$root"
  fi
  if ! docker image inspect "$RUNTIME_REF" >/dev/null 2>&1; then
    say "assembling $RUNTIME_REF from $NODE_BIN"
    rm -rf "$root" && mkdir -p "$root"/{bin,etc,usr/bin}
    printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
    printf 'root:x:0:\n' >"$root/etc/group"
    for lib in $(ldd "$NODE_BIN" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}') \
      $(dpkg -L libc6 libstdc++6 libgcc-s1 | grep -E '/lib[^/]*\.so[.0-9]*$'); do
      [[ -e $lib ]] && mkdir -p "$root$(dirname "$lib")" && cp -L "$lib" "$root$lib"
    done
    cp "$BUSYBOX" "$root/bin/busybox"
    ln -s busybox "$root/bin/sh"
    ln -s /bin/busybox "$root/usr/bin/env"
    add_node "$root" none
    tar -C "$root" -cf - . | docker import -c "ENV PATH=$PATH_ENV" \
      -c "ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt" -c 'CMD ["node"]' - "$RUNTIME_REF" >/dev/null
    rm -rf "$root"
  fi
}

build_pause() {
  [[ -f $PAUSE_TAR ]] && return 0
  ensure_docker
  say "building $PAUSE_REF"
  local root=$RUN/pause-root
  rm -rf "$root" && mkdir -p "$root/bin"
  cp "$BUSYBOX" "$root/bin/busybox"
  ln -s busybox "$root/bin/sh" && ln -s busybox "$root/bin/sleep"
  tar -C "$root" -cf - . | docker import \
    -c 'ENTRYPOINT ["/bin/sh", "-c", "trap \"exit 0\" TERM INT; sleep 2147483647 & wait"]' - "$PAUSE_REF" >/dev/null
  rm -rf "$root"
  save_tar "$PAUSE_REF" "$PAUSE_TAR"
}

# ------------------------------------------------------------------ the project's image and the fixtures

# What the Dockerfile reads: tracked and untracked (not ignored) files under the paths it copies.
IMAGE_INPUTS=(Dockerfile .dockerignore package.json package-lock.json .npmrc tsconfig.json scripts/bundle.js scripts/entry.js scripts/models.sh common proxy webhook classifier)
IMAGE_HASH=$( { echo "$BASE_HASH"; git ls-files -co --exclude-standard -- "${IMAGE_INPUTS[@]}" | sort | xargs sha256sum; } | hash_text)
VERSION=$(node -p 'require("./package.json").version')
IMAGE_REF=akto-agent-proxy:$VERSION-e2e-$IMAGE_HASH
IMAGE_TAR=$TARS/akto-agent-proxy-$IMAGE_HASH.tar

build_image() {
  [[ -f $IMAGE_TAR ]] && return 0
  ensure_docker && build_base
  say "docker build $IMAGE_REF (--build-arg NODE_IMAGE=$BASE_REF --build-arg RUNTIME_IMAGE=$RUNTIME_REF)"
  local start=$SECONDS
  DOCKER_BUILDKIT=0 docker build --network host --build-arg "NODE_IMAGE=$BASE_REF" --build-arg "RUNTIME_IMAGE=$RUNTIME_REF" \
    -t "$IMAGE_REF" . >"$RUN/docker-build.log" 2>&1 ||
    { tail -40 "$RUN/docker-build.log" >&2; say "docker build failed: $RUN/docker-build.log"; return 1; }
  say "built in $((SECONDS - start)) s"
  save_tar "$IMAGE_REF" "$IMAGE_TAR"
  docker image inspect -f '{{.Size}}' "$IMAGE_REF" >"$IMAGE_TAR.size"
  docker image inspect -f '{{.Size}}' "$RUNTIME_REF" >"$IMAGE_TAR.base-size"
}

FIXTURES_CTX=$RUN/fixtures
bundle_fixtures() {
  rm -rf "$FIXTURES_CTX" && mkdir -p "$FIXTURES_CTX"
  # require.main=null: the fixtures' own CLI guards must not fire inside the bundle (see scripts/bundle.js).
  npx --no-install esbuild test/cluster/pods/agent.ts test/cluster/pods/upstream.ts --bundle --platform=node \
    --target=node20 --format=cjs --define:require.main=null --outdir="$FIXTURES_CTX" --log-level=warning
  cp test/cluster/pods/fixtures.Dockerfile "$FIXTURES_CTX/Dockerfile"
}
bundle_fixtures
FIXTURES_HASH=$( { echo "$BASE_HASH"; cd "$FIXTURES_CTX" && sha256sum ./*; } | hash_text)
FIXTURES_REF=akto-e2e-fixtures:$FIXTURES_HASH
FIXTURES_TAR=$TARS/akto-e2e-fixtures-$FIXTURES_HASH.tar

build_fixtures() {
  [[ -f $FIXTURES_TAR ]] && return 0
  ensure_docker && build_base
  say "docker build $FIXTURES_REF"
  DOCKER_BUILDKIT=0 docker build --network host --build-arg "NODE_IMAGE=$RUNTIME_REF" -t "$FIXTURES_REF" "$FIXTURES_CTX" >"$RUN/fixtures-build.log" 2>&1 ||
    { tail -20 "$RUN/fixtures-build.log" >&2; return 1; }
  save_tar "$FIXTURES_REF" "$FIXTURES_TAR"
}

build_pause
build_image
build_fixtures

# The data root only needs the layers of the newest builds: past a bound, drop everything unused.
if [[ -n $DOCKERD_PID ]] && (( $(du -sm "$CACHE/docker" | cut -f1) > 12000 )); then
  say "docker data root over 12 GB: pruning unused images"
  docker image prune -af >/dev/null
fi

cat >"$RUN/images.env" <<EOF
PAUSE_REF=$PAUSE_REF
PAUSE_TAR=$PAUSE_TAR
IMAGE_REF=$IMAGE_REF
IMAGE_TAR=$IMAGE_TAR
FIXTURES_REF=$FIXTURES_REF
FIXTURES_TAR=$FIXTURES_TAR
IMAGE_SIZE=$(cat "$IMAGE_TAR.size" 2>/dev/null || echo unknown)
BASE_SIZE=$(cat "$IMAGE_TAR.base-size" 2>/dev/null || echo unknown)
EOF
say "ready: $IMAGE_REF, $FIXTURES_REF, $PAUSE_REF"
