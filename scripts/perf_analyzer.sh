#!/usr/bin/env bash
# NVIDIA perf_analyzer against models served by Triton, one run per concurrency level.
#
#   scripts/perf_analyzer.sh --url 127.0.0.1:8001 [--out DIR] [--levels "1 4 8 16"]
#                            [--spec MODULE:ATTR] [--input NAME=JSON]... MODEL...
#
# Fetches the binary once into $PERF_ANALYZER_CACHE (default ~/.cache/voicechat/perf_analyzer,
# never into git): the PyPI perf-analyzer package is a placeholder and newer tritonclient
# wheels dropped the binary, so it comes out of the tritonclient 2.41.0 wheel (not
# installed: the project needs tritonclient 2.5x). It needs Debian's libb64-0d and a
# libcudart.so.12, even on CPU: a symlink to the one inside nvidia_pytriton.libs.
#
# For each model it writes --input-data JSON from the model's spec (BYTES and
# variable-shape inputs need one; `voicechat bench inputs`), adds --streaming for
# decoupled models, and writes DIR/MODEL-cN.csv plus DIR/MODEL.log.
# Extra perf_analyzer flags: PA_ARGS (default: windows of PA_REQUESTS=100 requests, stable
# within 25% over 3 windows, at most 10 windows: shared CPUs are noisy).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
CACHE=${PERF_ANALYZER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/voicechat/perf_analyzer}
TRITONCLIENT_VERSION=2.41.0
URL=""; OUT=perf-analyzer-results; LEVELS="1 4 8 16"; SPEC_ARGS=(); INPUT_ARGS=(); MODELS=()

while [ $# -gt 0 ]; do
  case "$1" in
    --url) URL=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --levels) LEVELS=$2; shift 2 ;;
    --spec) SPEC_ARGS=(--spec "$2"); shift 2 ;;
    --input) INPUT_ARGS+=(--input "$2"); shift 2 ;;
    --fetch-only) FETCH_ONLY=1; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) MODELS+=("$1"); shift ;;
  esac
done

fetch() {
  local bin=$CACHE/bin/perf_analyzer
  if [ ! -x "$bin" ]; then
    mkdir -p "$CACHE/wheel" "$CACHE/bin"
    "$PY" -m pip download -q --no-deps "tritonclient==$TRITONCLIENT_VERSION" -d "$CACHE/wheel"
    local wheel
    wheel=$(ls "$CACHE"/wheel/tritonclient-"$TRITONCLIENT_VERSION"-*manylinux*.whl | head -1)
    unzip -q -o -j "$wheel" "tritonclient-$TRITONCLIENT_VERSION.data/data/bin/perf_analyzer" \
      -d "$CACHE/bin"
    chmod +x "$bin"
  fi
  # libcudart.so.12 (loaded even on CPU): the copy nvidia-pytriton bundles
  mkdir -p "$CACHE/lib"
  if [ ! -e "$CACHE/lib/libcudart.so.12" ]; then
    local libs
    libs=$("$PY" -c 'import pathlib, pytriton; print(pathlib.Path(pytriton.__file__).parent.parent / "nvidia_pytriton.libs")')
    ln -sf "$(ls "$libs"/libcudart-*.so.12* | head -1)" "$CACHE/lib/libcudart.so.12"
  fi
  # grep reads to the end: with -q it exits at the first match, ldconfig dies of SIGPIPE
  # and pipefail turned an installed library into "missing" now and then
  if ! ldconfig -p | grep 'libb64.so.0d' >/dev/null; then
    echo "perf_analyzer needs Debian's libb64-0d: sudo apt-get install libb64-0d" >&2
    exit 1
  fi
  export LD_LIBRARY_PATH="$CACHE/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  PERF_ANALYZER=$bin
}

fetch
if [ "${FETCH_ONLY:-0}" = 1 ]; then echo "$PERF_ANALYZER"; exit 0; fi
[ -n "$URL" ] && [ ${#MODELS[@]} -gt 0 ] || { echo "usage: $0 --url HOST:PORT MODEL..." >&2; exit 2; }

mkdir -p "$OUT/inputs"
read -r -a EXTRA <<< "${PA_ARGS:---measurement-mode count_windows --measurement-request-count ${PA_REQUESTS:-100} --max-trials 10 --stability-percentage 25}"
cd "$ROOT"
for model in "${MODELS[@]}"; do
  # --input-data=FILE plus --streaming / -b 1 as the spec requires
  read -r -a FLAGS <<< "$("$PY" -m orchestrator bench inputs --model "$model" "${SPEC_ARGS[@]}" \
                          "${INPUT_ARGS[@]}" --out "$OUT/inputs")"
  : > "$OUT/$model.log"
  for c in $LEVELS; do
    cmd=("$PERF_ANALYZER" -m "$model" -u "$URL" -i grpc --concurrency-range "$c:$c"
         "${FLAGS[@]}" "${EXTRA[@]}" -f "$OUT/$model-c$c.csv")
    echo "+ ${cmd[*]}" | tee -a "$OUT/$model.log"
    if ! "${cmd[@]}" > "$OUT/$model-c$c.log" 2>&1; then
      cat "$OUT/$model-c$c.log" >&2
      echo "perf_analyzer failed for $model at concurrency $c" >&2
      exit 1
    fi
    cat "$OUT/$model-c$c.log" >> "$OUT/$model.log" && rm "$OUT/$model-c$c.log"
    grep -E 'Throughput:|Avg latency:|p50 latency|p99 latency' "$OUT/$model.log" | tail -4 || true
  done
done
echo "results in $OUT"
