"""Trace a transformers causal LM into an ONNX decoder with an explicit KV cache.

Graph inputs: ``input_ids``, ``attention_mask`` (past + new), ``position_ids`` and one
``past.N.key`` / ``past.N.value`` per layer ``[1, kv_heads, past, head_dim]``; outputs
``logits`` and ``present.N.*``. The same graph serves prefill (past length 0) and each
decode step. The legacy TorchScript exporter is used (TOOLCHAIN.md): it keeps the past
axis dynamic down to length 0, which the dynamo exporter would specialise.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from export.llm.generation import past_name, present_name

OPSET = 17


def cache_geometry(model: Any) -> tuple[int, int, int]:
    """(layers, kv heads, head dim), read from a real forward pass (no config guessing)."""
    import torch

    with torch.no_grad():
        out = model(input_ids=torch.tensor([[0, 1]]), use_cache=True)
    layers = out.past_key_values.layers
    _, heads, _, head_dim = layers[0].keys.shape
    return len(layers), int(heads), int(head_dim)


def export_decoder(model: Any, target: Path) -> None:
    import torch
    from transformers import DynamicCache

    layers, heads, head_dim = cache_geometry(model)

    class Decoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, position_ids, *past):  # type: ignore[no-untyped-def]
            cache = DynamicCache(config=self.model.config)
            for i in range(layers):
                cache.update(past[2 * i], past[2 * i + 1], i)
            out = self.model(input_ids=input_ids, attention_mask=attention_mask,
                             position_ids=position_ids, past_key_values=cache, use_cache=True)
            present = []
            for layer in out.past_key_values.layers:
                present += [layer.keys, layer.values]
            return (out.logits, *present)

    past_names = [past_name(i, k) for i in range(layers) for k in ("key", "value")]
    present_names = [present_name(i, k) for i in range(layers) for k in ("key", "value")]
    # example sizes >= 2 on every dynamic axis, distinct so the tracer cannot merge them
    past = [torch.zeros(1, heads, 3, head_dim) for _ in past_names]
    example = (torch.tensor([[1, 2]]), torch.ones(1, 5, dtype=torch.long),
               torch.tensor([[3, 4]]), *past)
    axes: dict[str, dict[int, str]] = {"input_ids": {1: "new"}, "position_ids": {1: "new"},
                                       "attention_mask": {1: "total"}, "logits": {1: "new"}}
    axes.update({n: {2: "past"} for n in past_names})
    axes.update({n: {2: "total"} for n in present_names})
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(Decoder().eval(), example, str(target),
                          input_names=["input_ids", "attention_mask", "position_ids",
                                       *past_names],
                          output_names=["logits", *present_names], dynamic_axes=axes,
                          opset_version=OPSET, dynamo=False)
