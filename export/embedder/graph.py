"""The sentence-transformers stack as one ONNX graph: transformer -> pooling -> L2 norm.

Pooling follows the checkpoint's ``1_Pooling/config.json`` (mean, CLS, max or
mean-sqrt-len); normalisation is always applied, because the ``embedder`` contract is
unit vectors (the inner product is then the cosine similarity).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from export.errors import SourceError

POOLING_MODES = ("mean", "cls", "max", "mean_sqrt_len")


def pooling_mode(pooling: nn.Module) -> str:
    """The one pooling mode of a sentence-transformers ``Pooling`` module."""
    mode = getattr(pooling, "pooling_mode", None)
    if mode is None:  # sentence-transformers < 5 kept one flag per mode
        flags = {"cls": "pooling_mode_cls_token", "mean": "pooling_mode_mean_tokens",
                 "max": "pooling_mode_max_tokens",
                 "mean_sqrt_len": "pooling_mode_mean_sqrt_len_tokens"}
        mode = [name for name, flag in flags.items() if getattr(pooling, flag, False)]
    if isinstance(mode, list | tuple):
        if len(mode) != 1:
            raise SourceError(f"pooling {mode}: only a single pooling mode can be exported")
        mode = mode[0]
    mode = {"cls_token": "cls", "mean_tokens": "mean", "max_tokens": "max",
            "mean_sqrt_len_tokens": "mean_sqrt_len"}.get(str(mode), str(mode))
    if mode not in POOLING_MODES:
        raise SourceError(f"pooling mode {mode!r} is not supported; supported: "
                          f"{', '.join(POOLING_MODES)}")
    return mode


class SentenceEmbedding(nn.Module):
    """Token ids -> pooled, L2-normalised sentence vectors."""

    def __init__(self, transformer: nn.Module, mode: str, input_names: tuple[str, ...]) -> None:
        super().__init__()
        self.transformer = transformer
        self.mode = mode
        self.input_names = input_names

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        named = dict(zip(self.input_names, inputs, strict=True))
        hidden = self.transformer(**named, return_dict=True).last_hidden_state
        mask = named["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        if self.mode == "cls":
            pooled = hidden[:, 0]
        elif self.mode == "max":
            pooled = hidden.masked_fill(mask == 0, -1e9).max(dim=1).values
        else:
            summed = (hidden * mask).sum(dim=1)
            count = mask.sum(dim=1).clamp(min=1e-9)
            pooled = summed / (count.sqrt() if self.mode == "mean_sqrt_len" else count)
        return nn.functional.normalize(pooled, p=2.0, dim=1)


def export_graph(transformer: nn.Module, mode: str, input_names: tuple[str, ...],
                 path: Path, opset: int = 17) -> None:
    """Write the ONNX graph with dynamic batch and sequence axes."""
    wrapper = SentenceEmbedding(transformer, mode, input_names).eval()
    # Example sizes >= 2 on every dynamic axis (a size-1 example would fix the axis).
    example = tuple(torch.ones(2, 8, dtype=torch.long) if name != "token_type_ids"
                    else torch.zeros(2, 8, dtype=torch.long) for name in input_names)
    axes = {name: {0: "batch", 1: "sequence"} for name in input_names}
    axes["embedding"] = {0: "batch"}
    with torch.no_grad():
        torch.onnx.export(wrapper, example, str(path), input_names=list(input_names),
                          output_names=["embedding"], dynamic_axes=axes, opset_version=opset,
                          dynamo=False)
