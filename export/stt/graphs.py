"""ONNX graphs of a Whisper model: encoder (+ cross-attention K/V) and a cached decoder.

The decoder graph takes its self-attention cache as explicit tensors (openai-whisper
keeps it in forward hooks, which do not export): one call with the whole initial
sequence and an empty cache, then one token per call. The encoder graph also projects
the cross-attention keys and values of every decoder layer, so they are computed once
per window rather than once per token.

The decoder also returns ``alignment_qk``: the cross-attention scores (before softmax) of
the model's alignment heads, which follow the audio. Word timestamps come from them (one
decoder call over a window's whole transcript, then DTW: ``runtime/timing.py``), as in
openai-whisper's ``find_alignment``; a decoding step does not read them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

OPSET = 17


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, n_head: int,
            mask: torch.Tensor | None) -> torch.Tensor:
    return _attend_scores(q, k, v, n_head, mask)[0]


def _attend_scores(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, n_head: int,
                   mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """whisper.model.MultiHeadAttention.qkv_attention (the non-SDPA branch): the output
    and the scores ``qk`` [batch, head, query, key] it returns too."""
    n_batch, n_ctx, n_state = q.shape
    scale = (n_state // n_head) ** -0.25
    q = q.reshape(n_batch, n_ctx, n_head, -1).permute(0, 2, 1, 3)
    k = k.reshape(n_batch, k.shape[1], n_head, -1).permute(0, 2, 1, 3)
    v = v.reshape(n_batch, v.shape[1], n_head, -1).permute(0, 2, 1, 3)
    qk = (q * scale) @ (k * scale).transpose(-1, -2)
    if mask is not None:
        qk = qk + mask
    qk = qk.float()
    w = torch.softmax(qk, dim=-1).to(q.dtype)
    return (w @ v).permute(0, 2, 1, 3).flatten(start_dim=2), qk


def encode_sized(encoder: Any, mel: torch.Tensor) -> torch.Tensor:
    """whisper.model.AudioEncoder.forward for a mel of any even length up to 3000 frames:
    the positional embedding is cut to the length (whisper.cpp's ``audio_ctx``), so audio
    shorter than 30 s need not be padded to 30 s. At 3000 frames it is the original."""
    x = torch.nn.functional.gelu(encoder.conv1(mel))
    x = torch.nn.functional.gelu(encoder.conv2(x))
    x = x.permute(0, 2, 1)
    x = (x + encoder.positional_embedding[:x.shape[1]]).to(x.dtype)
    for block in encoder.blocks:
        x = block(x)
    return encoder.ln_post(x)


class EncoderGraph(nn.Module):
    def __init__(self, model: Any) -> None:
        super().__init__()
        self.encoder = model.encoder
        self.blocks = model.decoder.blocks

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        features = encode_sized(self.encoder, mel)
        cross_k = torch.stack([b.cross_attn.key(features) for b in self.blocks])
        cross_v = torch.stack([b.cross_attn.value(features) for b in self.blocks])
        return features, cross_k, cross_v


def alignment_heads(model: Any) -> list[tuple[int, int]]:
    """(layer, head) pairs of the model's alignment heads (openai-whisper's buffer)."""
    return [(int(layer), int(head)) for layer, head in model.alignment_heads.indices().T]


class DecoderGraph(nn.Module):
    def __init__(self, model: Any) -> None:
        super().__init__()
        self.decoder = model.decoder
        self.n_head = model.dims.n_text_head
        self.heads = alignment_heads(model)

    def forward(self, tokens: torch.Tensor, self_k: torch.Tensor, self_v: torch.Tensor,
                cross_k: torch.Tensor, cross_v: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        d = self.decoder
        offset = self_k.shape[2]
        n_new = tokens.shape[1]
        x = d.token_embedding(tokens) + d.positional_embedding[offset:offset + n_new]
        mask = d.mask[offset:offset + n_new, :offset + n_new]
        new_k, new_v, scores = [], [], []
        for i, block in enumerate(d.blocks):
            h = block.attn_ln(x)
            k = torch.cat([self_k[i], block.attn.key(h)], dim=1)
            v = torch.cat([self_v[i], block.attn.value(h)], dim=1)
            new_k.append(k)
            new_v.append(v)
            x = x + block.attn.out(_attend(block.attn.query(h), k, v, self.n_head, mask))
            h = block.cross_attn_ln(x)
            out, qk = _attend_scores(block.cross_attn.query(h), cross_k[i], cross_v[i],
                                     self.n_head, None)
            x = x + block.cross_attn.out(out)
            scores += [qk[:, head] for layer, head in self.heads if layer == i]
            x = x + block.mlp(block.mlp_ln(x))
        x = d.ln(x)
        logits = (x @ d.token_embedding.weight.transpose(0, 1)).float()
        return logits, torch.stack(new_k), torch.stack(new_v), torch.stack(scores)


def export_graphs(model: Any, directory: Path) -> tuple[Path, Path]:
    """Write ``encoder.onnx`` and ``decoder.onnx`` (legacy exporter, opset 17)."""
    import warnings

    from whisper.model import MultiHeadAttention

    dims = model.dims
    encoder_path, decoder_path = directory / "encoder.onnx", directory / "decoder.onnx"
    use_sdpa = MultiHeadAttention.use_sdpa
    MultiHeadAttention.use_sdpa = False  # plain matmul/softmax attention exports cleanly
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mel = torch.zeros(2, dims.n_mels, 2 * dims.n_audio_ctx)
            torch.onnx.export(
                EncoderGraph(model), (mel,), str(encoder_path), dynamo=False,
                opset_version=OPSET, input_names=["mel"],
                output_names=["audio_features", "cross_k", "cross_v"],
                dynamic_axes={"mel": {0: "batch", 2: "frames"},
                              "audio_features": {0: "batch", 1: "audio_ctx"},
                              "cross_k": {1: "batch", 2: "audio_ctx"},
                              "cross_v": {1: "batch", 2: "audio_ctx"}})
            L, d = dims.n_text_layer, dims.n_text_state
            example = (torch.zeros(2, 3, dtype=torch.long), torch.zeros(L, 2, 4, d),
                       torch.zeros(L, 2, 4, d), torch.zeros(L, 2, dims.n_audio_ctx, d),
                       torch.zeros(L, 2, dims.n_audio_ctx, d))
            torch.onnx.export(
                DecoderGraph(model), example, str(decoder_path), dynamo=False,
                opset_version=OPSET,
                input_names=["tokens", "self_k", "self_v", "cross_k", "cross_v"],
                output_names=["logits", "new_self_k", "new_self_v", "alignment_qk"],
                dynamic_axes={"tokens": {0: "batch", 1: "new"},
                              "self_k": {1: "batch", 2: "past"},
                              "self_v": {1: "batch", 2: "past"},
                              "cross_k": {1: "batch", 2: "audio_ctx"},
                              "cross_v": {1: "batch", 2: "audio_ctx"},
                              "logits": {0: "batch", 1: "new"},
                              "new_self_k": {1: "batch", 2: "total"},
                              "new_self_v": {1: "batch", 2: "total"},
                              "alignment_qk": {1: "batch", 2: "new", 3: "audio_ctx"}})
    finally:
        MultiHeadAttention.use_sdpa = use_sdpa
    return encoder_path, decoder_path
