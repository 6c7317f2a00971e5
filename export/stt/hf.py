"""Hugging Face ``WhisperForConditionalGeneration`` directories -> openai-whisper weights."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from export.errors import SourceError

_RENAMES = [
    (r"^model\.encoder\.embed_positions\.weight$", "encoder.positional_embedding"),
    (r"^model\.decoder\.embed_positions\.weight$", "decoder.positional_embedding"),
    (r"^model\.decoder\.embed_tokens\.", "decoder.token_embedding."),
    (r"^model\.encoder\.layer_norm\.", "encoder.ln_post."),
    (r"^model\.decoder\.layer_norm\.", "decoder.ln."),
    (r"^model\.(encoder|decoder)\.conv", r"\1.conv"),
    (r"^model\.(encoder|decoder)\.layers\.", r"\1.blocks."),
    (r"\.self_attn_layer_norm\.", ".attn_ln."),
    (r"\.encoder_attn_layer_norm\.", ".cross_attn_ln."),
    (r"\.final_layer_norm\.", ".mlp_ln."),
    (r"\.self_attn\.", ".attn."),
    (r"\.encoder_attn\.", ".cross_attn."),
    (r"\.q_proj\.", ".query."),
    (r"\.k_proj\.", ".key."),
    (r"\.v_proj\.", ".value."),
    (r"\.out_proj\.", ".out."),
    (r"\.fc1\.", ".mlp.0."),
    (r"\.fc2\.", ".mlp.2."),
]


def is_hf_whisper(directory: Path) -> bool:
    import json

    config = directory / "config.json"
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text()).get("model_type") == "whisper"
    except ValueError:
        return False


def whisper_state_dict(directory: Path) -> tuple[dict[str, int], dict[str, np.ndarray]]:
    try:
        from transformers import WhisperForConditionalGeneration
    except ImportError as exc:  # pragma: no cover - transformers is a dependency
        raise SourceError("transformers is needed to read Hugging Face checkpoints") from exc
    try:
        model = WhisperForConditionalGeneration.from_pretrained(str(directory))
    except (OSError, ValueError) as exc:
        raise SourceError(f"{directory}: cannot load the Hugging Face Whisper model: {exc}") \
            from exc
    c = model.config
    dims = {"n_mels": c.num_mel_bins, "n_audio_ctx": c.max_source_positions,
            "n_audio_state": c.d_model, "n_audio_head": c.encoder_attention_heads,
            "n_audio_layer": c.encoder_layers, "n_vocab": c.vocab_size,
            "n_text_ctx": c.max_target_positions, "n_text_state": c.d_model,
            "n_text_head": c.decoder_attention_heads, "n_text_layer": c.decoder_layers}
    sd = {}
    for name, tensor in model.state_dict().items():
        if name == "proj_out.weight":  # tied to the token embedding in whisper
            continue
        for pattern, replacement in _RENAMES:
            name = re.sub(pattern, replacement, name)
        sd[name] = tensor.detach().float().numpy()
    return dims, sd
