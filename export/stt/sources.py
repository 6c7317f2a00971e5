"""Every source a model engineer may hold, loaded as an openai-whisper ``Whisper`` (fp32).

* an openai-whisper checkpoint file (``*.pt`` with ``dims`` and ``model_state_dict``)
* an openai-whisper model name (tiny … large-v3-turbo; downloaded when a network is there)
* a Hugging Face Whisper directory (``config.json`` with ``model_type: whisper``)
* a CTranslate2 / faster-whisper directory (``model.bin`` or ``model.bin.partN``)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from export.errors import SourceError


@dataclass
class LoadedSource:
    model: Any
    """whisper.model.Whisper, eval mode, float32."""
    kind: str
    description: dict[str, Any] = field(default_factory=dict)
    inputs: list[Path] = field(default_factory=list)
    """Files whose sha256 goes into the manifest."""


def _build(dims: dict[str, int], state: dict[str, Any]) -> Any:
    import torch
    from whisper.model import ModelDimensions, Whisper

    model = Whisper(ModelDimensions(**{k: int(v) for k, v in dims.items()}))
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v
               for k, v in state.items()}
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    # alignment_heads is a non-persistent buffer; nothing else may be missing.
    missing = [m for m in missing if m != "alignment_heads"]
    if missing or unexpected:
        raise SourceError(f"weights do not fit Whisper{dims}: missing {missing[:5]}, "
                          f"unexpected {unexpected[:5]}")
    return model.float().eval()


def set_alignment_heads(model: Any, heads: Sequence[Sequence[int]] | None) -> None:
    """The cross-attention heads whose weights follow the audio (word timestamps), as the
    checkpoint lists them; None keeps openai-whisper's default (every head of the upper
    half of the decoder layers). openai-whisper's own names come with theirs."""
    if not heads:
        return
    import torch

    dims = model.dims
    mask = torch.zeros(dims.n_text_layer, dims.n_text_head, dtype=torch.bool)
    for layer, head in heads:
        if not (0 <= layer < dims.n_text_layer and 0 <= head < dims.n_text_head):
            raise SourceError(f"alignment head {[layer, head]} is outside the decoder "
                              f"({dims.n_text_layer} layers x {dims.n_text_head} heads)")
        mask[layer, head] = True
    model.register_buffer("alignment_heads", mask.to_sparse(), persistent=False)


def _listed_heads(*files: Path) -> list | None:
    """``alignment_heads`` of a CTranslate2 ``config.json`` or a Hugging Face
    ``generation_config.json``."""
    import json

    for file in files:
        if file.is_file():
            heads = json.loads(file.read_text(encoding="utf-8")).get("alignment_heads")
            if heads:
                return heads
    return None


def load_source(source: str, parts: Sequence[str] = ()) -> LoadedSource:
    import whisper

    path = Path(source)
    if path.is_dir():
        from export.stt import ct2, hf

        if hf.is_hf_whisper(path):
            dims, state = hf.whisper_state_dict(path)
            files = sorted(p for p in path.iterdir() if p.is_file())
            model = _build(dims, state)
            set_alignment_heads(model, _listed_heads(path / "generation_config.json"))
            return LoadedSource(model, "huggingface",
                                {"path": str(path.resolve())}, files)
        if parts or any(path.glob("model.bin*")):
            files = ct2.model_files(path, [Path(p) for p in parts])
            spec, variables = ct2.read_variables(files)
            if spec and spec != "WhisperSpec":
                raise SourceError(f"{path}: CTranslate2 model of kind {spec}, not Whisper")
            dims, state = ct2.whisper_state_dict(variables)
            model = _build(dims, state)
            set_alignment_heads(model, _listed_heads(path / "config.json"))
            return LoadedSource(model, "ctranslate2",
                                {"path": str(path.resolve()),
                                 "parts": [str(f.resolve()) for f in files]},
                                [*files, *(p for p in (path / "config.json",) if p.is_file())])
        raise SourceError(f"{path}: neither a Hugging Face Whisper directory nor a "
                          "CTranslate2 model directory")
    if path.is_file():
        import torch

        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
            dims, state = checkpoint["dims"], checkpoint["model_state_dict"]
        except Exception as exc:
            raise SourceError(f"{path}: not an openai-whisper checkpoint: {exc}") from exc
        return LoadedSource(_build(dims, state), "openai-whisper",
                            {"path": str(path.resolve())}, [path])
    if source in whisper.available_models():
        try:
            model = whisper.load_model(source, device="cpu")
        except Exception as exc:
            raise SourceError(f"cannot download openai-whisper {source!r} (no network?): "
                              f"{exc}") from exc
        return LoadedSource(model.float().eval(), "openai-whisper", {"name": source})
    raise SourceError(f"{source!r} is not a file, a directory or an openai-whisper model name "
                      f"({', '.join(whisper.available_models())})")
