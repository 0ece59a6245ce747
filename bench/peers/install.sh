#!/usr/bin/env bash
# Installs the peers that `npm run bench:peers` and `npm run eval:peers` compare against, each into a cache
# outside the repo (nothing from a peer is ever committed), pinned by version so runs are comparable.
#
#   bash bench/peers/install.sh PEER...      PEER: wrk nginx portkey litellm presidio detect-secrets redis differential
#
# `wrk` (load generator) and `redis` (the shared-limits store the limits tests start on loopback) are tools
# the test suite needs, installed the same way. `differential` is not a peer but the same kind of install: the
# Python packages (FastAPI, uvicorn) of the differential upstream the request-integrity tests run
# (test/fixtures/differential_upstream.py).
#
# Prints one line per peer: `ready PEER PATH` or `unavailable PEER: reason`. It exits 0 either way, so a
# benchmark can skip a peer it cannot get with one clear line instead of failing the whole run.
set -uo pipefail

PORTKEY_VERSION=${PORTKEY_VERSION:-1.15.2}
# Portkey 1.15.2 streams fail with "TypeError: immutable" on @hono/node-server 1.14.2 and later (Portkey-AI/gateway#1389).
PORTKEY_HONO_NODE_SERVER=${PORTKEY_HONO_NODE_SERVER:-1.14.1}
LITELLM_VERSION=${LITELLM_VERSION:-1.108.0}
PRESIDIO_VERSION=${PRESIDIO_VERSION:-2.2.366}
DETECT_SECRETS_VERSION=${DETECT_SECRETS_VERSION:-1.5.0}
# Every package of the differential upstream's venv, pinned (pip freeze), so its parsing never drifts.
DIFFERENTIAL_PACKAGES="fastapi==0.165.0 starlette==1.10.0 uvicorn==0.55.0 h11==0.16.0 pydantic==2.14.4 pydantic_core==2.50.5 \
annotated-doc==0.0.7 annotated-types==0.8.0 anyio==4.16.0 click==8.5.1 idna==3.20 opentelemetry-api==1.45.2 \
typing-inspection==0.4.5 typing_extensions==4.16.0 brotli==1.2.1"

CACHE=${AKTO_PEERS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/akto-agent-proxy/peers}
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
if command -v flock >/dev/null; then flock 9; fi

say() { echo "[peers] $*" >&2; }
ready() { echo "ready $1 $2"; }
unavailable() { echo "unavailable $1: $2"; }

# Debian packages. nginx's postinst would start a system nginx on port 80; a policy-rc.d that refuses
# service starts keeps the install from leaving a daemon behind.
apt_install() {
  local pkgs=("$@")
  if [ "$(id -u)" != 0 ] && ! command -v sudo >/dev/null; then return 1; fi
  local SUDO=""
  [ "$(id -u)" != 0 ] && SUDO=sudo
  local policy=/usr/sbin/policy-rc.d created=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null && $SUDO chmod +x "$policy" && created=1
  fi
  say "apt-get install ${pkgs[*]}"
  $SUDO apt-get update -qq >"$CACHE/apt.log" 2>&1
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >>"$CACHE/apt.log" 2>&1
  local rc=$?
  [ "$created" = 1 ] && $SUDO rm -f "$policy"
  return $rc
}

# A Python virtualenv per peer, so their dependency pins never meet.
venv_install() {
  local name=$1 stamp=$2
  shift 2
  local dir="$CACHE/$name"
  if [ -f "$dir/.stamp" ] && [ "$(cat "$dir/.stamp")" = "$stamp" ]; then return 0; fi
  command -v python3 >/dev/null || return 1
  say "pip install $* into $dir"
  rm -rf "$dir" && python3 -m venv "$dir" >"$CACHE/$name.log" 2>&1 &&
    "$dir/bin/pip" install -q --disable-pip-version-check "$@" >>"$CACHE/$name.log" 2>&1 &&
    echo "$stamp" >"$dir/.stamp"
}

install_peer() {
  case "$1" in
  wrk)
    command -v wrk >/dev/null || apt_install wrk || { unavailable wrk "apt-get install wrk failed (see $CACHE/apt.log)"; return; }
    ready wrk "$(command -v wrk)"
    ;;
  redis)
    local bin=/usr/bin/redis-server
    [ -x "$bin" ] || apt_install redis-server || { unavailable redis "apt-get install redis-server failed (see $CACHE/apt.log)"; return; }
    ready redis "$bin"
    ;;
  nginx)
    local bin=/usr/sbin/nginx
    [ -x "$bin" ] || apt_install nginx-light || { unavailable nginx "apt-get install nginx-light failed (see $CACHE/apt.log)"; return; }
    ready nginx "$bin"
    ;;
  portkey)
    local dir="$CACHE/portkey-$PORTKEY_VERSION-hono-$PORTKEY_HONO_NODE_SERVER"
    local entry="$dir/node_modules/@portkey-ai/gateway/build/start-server.js"
    if [ ! -f "$entry" ]; then
      say "npm install @portkey-ai/gateway@$PORTKEY_VERSION into $dir"
      mkdir -p "$dir" && echo "{\"private\":true,\"overrides\":{\"@hono/node-server\":\"$PORTKEY_HONO_NODE_SERVER\"}}" >"$dir/package.json" &&
        npm install --prefix "$dir" --no-audit --no-fund --omit=dev "@portkey-ai/gateway@$PORTKEY_VERSION" >"$CACHE/portkey.log" 2>&1 ||
        { unavailable portkey "npm install failed (see $CACHE/portkey.log)"; return; }
    fi
    ready portkey "$entry"
    ;;
  litellm)
    venv_install litellm "litellm[proxy]==$LITELLM_VERSION" "litellm[proxy]==$LITELLM_VERSION" ||
      { unavailable litellm "pip install litellm[proxy]==$LITELLM_VERSION failed (see $CACHE/litellm.log)"; return; }
    ready litellm "$CACHE/litellm/bin/litellm"
    ;;
  presidio)
    venv_install presidio "presidio-analyzer==$PRESIDIO_VERSION" "presidio-analyzer==$PRESIDIO_VERSION" ||
      { unavailable presidio "pip install presidio-analyzer==$PRESIDIO_VERSION failed (see $CACHE/presidio.log)"; return; }
    ready presidio "$CACHE/presidio/bin/python"
    ;;
  detect-secrets)
    venv_install detect-secrets "detect-secrets==$DETECT_SECRETS_VERSION" "detect-secrets==$DETECT_SECRETS_VERSION" ||
      { unavailable detect-secrets "pip install detect-secrets==$DETECT_SECRETS_VERSION failed (see $CACHE/detect-secrets.log)"; return; }
    ready detect-secrets "$CACHE/detect-secrets/bin/python"
    ;;
  differential)
    # shellcheck disable=SC2086 # one word per package
    venv_install differential "$DIFFERENTIAL_PACKAGES" $DIFFERENTIAL_PACKAGES ||
      { unavailable differential "pip install of the differential upstream's packages failed (see $CACHE/differential.log)"; return; }
    ready differential "$CACHE/differential/bin/python"
    ;;
  *)
    unavailable "$1" "unknown peer (known: wrk nginx portkey litellm presidio detect-secrets redis differential)"
    ;;
  esac
}

for peer in "$@"; do install_peer "$peer"; done
