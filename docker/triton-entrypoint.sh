#!/bin/sh
# Triton in explicit model control, then each model's promoted versions (serving.json),
# not "latest" (orchestrator/models/load_promoted.py). Signals go to tritonserver, which
# finishes the requests in flight before it exits.
set -eu
MODELS="${TRITON_MODELS:-stt llm tts embedder}"
tritonserver --model-repository=/models --model-control-mode=explicit \
  --http-port=8000 --grpc-port=8001 --metrics-port=8002 --allow-metrics=true "$@" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null' TERM INT
# shellcheck disable=SC2086 # one argument per model
if ! python3 -m orchestrator.models.load_promoted --url http://127.0.0.1:8000 \
    --repository /models $MODELS; then
  kill -TERM "$pid"
  wait "$pid" || true
  exit 1
fi
wait "$pid"
