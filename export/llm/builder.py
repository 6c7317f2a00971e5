"""ONNX Runtime GenAI's model builder: a Hugging Face directory -> ``model.onnx`` +
``genai_config.json`` for one precision and execution provider.

The builder runs in a child process (``python -m onnxruntime_genai.models.builder``): it
is the builder's stable interface, and its progress bars stay out of our output unless it
fails. Precision presets carry the quantisation settings measured in
``docs/benchmarks/llm.md``:

* ``int4``: 4-bit weights (MatMulNBits, block 32, symmetric, int8 activations on CPU)
  with the output projection and the llama.cpp "mixed" layers (first/last eighth, every
  third qkv/v/down projection) kept at int8. The builder's plain int4 quantises the tied
  embedding / lm_head too and costs +16 % perplexity on SmolLM2; this preset is within
  the 5 % gate at ~0.9x plain int4's decode speed.
* ``int8``: 8-bit weights everywhere (perplexity +0.6 %).
* ``fp32``: no quantisation; the reference for the quality gates.

``prune_lm_head`` makes prefill compute logits for the last position only (all the
generator reads), which cuts time to first token by ~15 %.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from export.errors import ExportError

PRECISIONS = ("fp32", "int8", "int4")
EXECUTION_PROVIDERS = ("cpu", "cuda")
CONFIG_FILE = "genai_config.json"
MODEL_FILE = "model.onnx"

COMMON_OPTIONS = {"prune_lm_head": "true"}
PRESETS: dict[str, dict[str, str]] = {
    "fp32": {},
    "int8": {},
    "int4": {"algo_config": "rtn",
             "matmul_mixed_precision": "last_matmul:int8,mixed_layers:int8"},
}


def builder_options(precision: str, overrides: Mapping[str, str] | None = None
                    ) -> dict[str, str]:
    """The ``--extra_options`` for ``precision``: the preset, then ``overrides``."""
    if precision not in PRESETS:
        raise ExportError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    return {**COMMON_OPTIONS, **PRESETS[precision], **(overrides or {})}


def parse_option(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` from the command line."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ExportError(f"invalid builder option {text!r}: expected KEY=VALUE")
    return key, value


def build(hf_dir: Path, out_dir: Path, precision: str, execution_provider: str,
          cache_dir: Path, options: Mapping[str, str]) -> dict:
    """Run the builder; returns the written ``genai_config.json``."""
    if execution_provider not in EXECUTION_PROVIDERS:
        raise ExportError(f"unknown execution provider {execution_provider!r}: use one of "
                          f"{', '.join(EXECUTION_PROVIDERS)}")
    command = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(hf_dir),
               "-o", str(out_dir), "-p", precision, "-e", execution_provider,
               "-c", str(cache_dir)]
    if options:
        command += ["--extra_options", *(f"{k}={v}" for k, v in options.items())]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    config = out_dir / CONFIG_FILE
    if result.returncode != 0 or not config.is_file():
        tail = (result.stderr or result.stdout).strip().splitlines()[-8:]
        raise ExportError("the ONNX Runtime GenAI model builder failed:\n" + "\n".join(tail))
    return json.loads(config.read_text(encoding="utf-8"))
