#!/usr/bin/env bash
# Set up and run the whole benchmark suite on one machine; results and plots in --out.
#
#   scripts/bench_gpu.sh [--cpu] [--probe-only] [--out DIR] [--levels 1,4,8,16] [--requests N]
#
# GPU (default): installs the package with the gpu extra (onnxruntime-gpu replaces
# onnxruntime), exports the real models (first run), writes the GPU profile of the
# repository (KIND_GPU, instance counts, batching: export/profiles.py) as a separate
# copy, starts Triton on it, and runs: Triton statistics, dynamic batching gain, the
# per-model sweeps, perf_analyzer per model, the per-model benches registered in
# bench/ (EXTRA_BENCHES), and the end-to-end realtime load through the
# orchestrator. --cpu runs the same steps on the CPU profile; --probe-only uses only the
# test model bench_probe (tests/support/probe_spec.py), no real weights.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PROFILE=gpu; PROBE_ONLY=0; OUT=""; LEVELS=1,4,8,16; REQUESTS=200
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) PROFILE=cpu; shift ;;
    --probe-only) PROBE_ONLY=1; shift ;;
    --out) OUT=$2; shift 2 ;;
    --levels) LEVELS=$2; shift 2 ;;
    --requests) REQUESTS=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
OUT=$(realpath -m "${OUT:-bench-results/$PROFILE-$(date -u +%Y%m%dT%H%M%SZ)}")
WORK=$OUT/work
mkdir -p "$WORK"
VENV=$ROOT/.venv
PY=$VENV/bin/python
VC=("$PY" -m orchestrator)   # python -m: the repo root is importable (tests.support.probe_spec)
log() { echo "== $*" | tee -a "$OUT/bench.log"; }

# --- 1. environment -----------------------------------------------------------------------
log "setup ($PROFILE profile)"
make setup >/dev/null
if [ "$PROFILE" = gpu ]; then
  command -v nvidia-smi >/dev/null || { echo "no nvidia-smi: not a GPU machine (use --cpu)" >&2; exit 1; }
  nvidia-smi > "$OUT/nvidia-smi.txt"
  if ! "$PY" -c 'import onnxruntime as o, sys; sys.exit("CUDAExecutionProvider" not in o.get_available_providers())'; then
    # onnxruntime and onnxruntime-gpu install the same module (and GenAI's CPU and CUDA
    # builds the same onnxruntime_genai): swap both, keeping the pins
    "$VENV/bin/pip" uninstall -y -q onnxruntime onnxruntime-genai
    "$VENV/bin/pip" install -q -e ".[gpu,dev]" "numpy<2"
  fi
  "$PY" -c 'import onnxruntime as o; print("onnxruntime providers:", o.get_available_providers())' | tee -a "$OUT/bench.log"
fi

# --- 2. models and the profiled repository ----------------------------------------------------
MODELS=()
if [ "$PROBE_ONLY" = 0 ]; then
  log "export real models (first run only)"
  "$PY" -m scripts.export_default_models
  for m in stt llm tts embedder; do
    ls model_repository/$m/*/manifest.json >/dev/null 2>&1 && MODELS+=("$m")
  done
fi
REPO=$WORK/repository
log "write the $PROFILE repository at $REPO (models: ${MODELS[*]:-none} + bench_probe)"
"$PY" -m export configs --profile "$PROFILE" --repo "$REPO" --from model_repository
"$PY" -m tests.support.probe --repo "$REPO" $([ "$PROFILE" = gpu ] && echo --gpu)

# --- 3. Triton ------------------------------------------------------------------------------
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
GRPC=$(free_port); HTTP=$(free_port); METRICS=$(free_port); PORT=$(free_port)
export MODEL_REPOSITORY=$REPO DATA_DIR=$WORK/data TRITON_GRPC_PORT=$GRPC TRITON_HTTP_PORT=$HTTP \
       TRITON_METRICS_PORT=$METRICS LOG_FORMAT=text MEMORY_ENABLED=${MEMORY_ENABLED:-true}
URL=127.0.0.1:$GRPC
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
log "start Triton (gRPC $URL)"
"${VC[@]}" triton > "$OUT/triton.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 600); do
  curl -sf "http://127.0.0.1:$HTTP/v2/health/ready" >/dev/null && break
  kill -0 "${PIDS[0]}" 2>/dev/null || { tail -30 "$OUT/triton.log" >&2; exit 1; }
  sleep 0.5
done
curl -sf -X POST "http://127.0.0.1:$HTTP/v2/repository/models/bench_probe/load" >/dev/null

# --- 4. benches -----------------------------------------------------------------------------
COMMON=(--url "$URL" --levels "$LEVELS" --requests "$REQUESTS" --out "$OUT" --no-progress)
PROBE=(--spec tests.support.probe_spec:SPEC)
log "dynamic batching gain: bench_probe"
"${VC[@]}" bench batching --model bench_probe "${PROBE[@]}" "${COMMON[@]}" | tee -a "$OUT/bench.log"
log "perf_analyzer: bench_probe"
scripts/perf_analyzer.sh --url "$URL" --out "$OUT/perf_analyzer" --levels "${LEVELS//,/ }" \
  "${PROBE[@]}" bench_probe | tee -a "$OUT/bench.log" || log "perf_analyzer failed (see $OUT/perf_analyzer)"

if [ ${#MODELS[@]} -gt 0 ]; then
  log "per-model sweeps: ${MODELS[*]}"
  MODEL_ARGS=(); for m in "${MODELS[@]}"; do MODEL_ARGS+=(--model "$m"); done
  "${VC[@]}" bench models "${MODEL_ARGS[@]}" "${COMMON[@]}" --requests "$((REQUESTS / 4))" \
    | tee -a "$OUT/bench.log" || log "some model requests failed (see models.json)"
  for m in "${MODELS[@]}"; do
    log "dynamic batching gain: $m"
    "${VC[@]}" bench batching --model "$m" "${COMMON[@]}" --requests "$((REQUESTS / 4))" \
      | tee -a "$OUT/bench.log" || true   # max_batch_size 0 (llm): reported, skipped
    log "perf_analyzer: $m"
    scripts/perf_analyzer.sh --url "$URL" --out "$OUT/perf_analyzer" --levels "${LEVELS//,/ }" \
      "$m" | tee -a "$OUT/bench.log" || log "perf_analyzer failed for $m"
  done
  # Per-model benches (bench/<name>.py), when registered in BENCHES.
  for b in ${EXTRA_BENCHES:-stt llm tts memory}; do
    if "$PY" -c "import sys; from bench import BENCHES; sys.exit('$b' not in BENCHES)"; then
      log "bench $b"
      "${VC[@]}" bench "$b" --url "$URL" --out "$OUT" | tee -a "$OUT/bench.log" || log "bench $b failed"
    fi
  done
  if [[ " ${MODELS[*]} " == *" stt "* && " ${MODELS[*]} " == *" llm "* && " ${MODELS[*]} " == *" tts "* ]]; then
    log "end-to-end realtime sessions"
    # Loopback only, so open access is allowed: the sweep measures the models, not keys.
    AUTH_MODE=off TRITON_URL=$URL PORT=$PORT "${VC[@]}" serve > "$OUT/serve.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 240); do curl -sf "http://127.0.0.1:$PORT/api/ping" >/dev/null && break; sleep 0.5; done
    "${VC[@]}" bench e2e --base-url "http://127.0.0.1:$PORT" --sessions "${E2E_SESSIONS:-1,2,4,8,16}" \
      --turns 3 --target-ms "${E2E_TARGET_MS:-1500}" --out "$OUT" --no-progress \
      | tee -a "$OUT/bench.log" || log "e2e: some sessions failed (see e2e.json)"
  fi
fi

log "Triton statistics for the whole run"
"${VC[@]}" bench triton --url "$URL" --json "$OUT" | tee -a "$OUT/bench.log"
[ "$PROFILE" = gpu ] && nvidia-smi --query-gpu=name,memory.used,memory.total,utilization.gpu \
  --format=csv >> "$OUT/nvidia-smi.txt"
log "done: $OUT"
ls "$OUT" | tee -a "$OUT/bench.log"
