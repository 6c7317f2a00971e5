"""A transformers ``VitsModel`` directory (MMS-TTS family) -> a Piper-signature ONNX voice.

The graph wraps VitsModel's inference path so that it takes Piper's inputs (``input``,
``input_lengths``, ``scales`` = noise_scale, length_scale, noise_w, and ``sid`` for
multi-speaker models) and gives Piper's output shape: the runtime then serves VITS and
Piper voices through one code path, and noise and speed become run-time inputs instead
of constants frozen at export. Parity runs with zero noise (the deterministic path) and
compares against ``VitsModel`` itself in PyTorch.

The tokenizer is characters (``vocab.json``): its vocabulary becomes the voice's symbol
map. ``phonemize=True`` tokenizers (they call the ``phonemizer`` package) are refused.
``is_uroman=True`` tokenizers (many MMS voices, mms-tts-kor among them) expect romanised
text: the voice records it and the runtime romanises with the ``uroman`` package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from export.errors import SourceError
from export.repository import ParityFigure

OPSET = 17
# MMS tokenizers name their language in ISO 639-3; the text front end uses 639-1.
ISO_639_3 = {"eng": "en", "kor": "ko", "deu": "de", "fra": "fr", "spa": "es", "jpn": "ja",
             "cmn": "zh", "rus": "ru", "por": "pt", "ita": "it", "nld": "nl", "vie": "vi"}


def is_vits_dir(path: Path) -> bool:
    import json

    config = path / "config.json"
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text(encoding="utf-8")).get("model_type") == "vits"
    except ValueError:
        return False


def load(path: Path) -> tuple[Any, Any]:
    from transformers import VitsModel, VitsTokenizer

    try:
        model = VitsModel.from_pretrained(path).eval()
        tokenizer = VitsTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise SourceError(f"{path}: not a loadable VitsModel + VitsTokenizer: {exc}") from exc
    if tokenizer.phonemize:
        raise SourceError(f"{path}: this VitsTokenizer phonemises with the phonemizer package "
                          "(phonemize=true); only character tokenizers (MMS-TTS) are supported")
    return model, tokenizer


def _wrapper(model: Any) -> Any:
    import torch
    from torch import nn

    class PiperSignature(nn.Module):
        """VitsModel.forward's inference path with scales as tensors (see module doc)."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input, input_lengths, scales, sid=None):  # type: ignore[no-untyped-def]
            m = self.model
            noise_scale, length_scale, noise_w = scales[0], scales[1], scales[2]
            mask = torch.arange(input.shape[1], device=input.device)[None, :] < \
                input_lengths[:, None]
            padding_mask = mask.unsqueeze(-1).to(torch.float32)
            speaker = m.embed_speaker(sid).unsqueeze(-1) if sid is not None else None
            encoded = m.text_encoder(input_ids=input, padding_mask=padding_mask,
                                     attention_mask=mask.long(), return_dict=True)
            hidden = encoded.last_hidden_state.transpose(1, 2)
            padding_mask = padding_mask.transpose(1, 2)
            if m.config.use_stochastic_duration_prediction:
                log_duration = m.duration_predictor(hidden, padding_mask, speaker, reverse=True,
                                                    noise_scale=noise_w)
            else:
                log_duration = m.duration_predictor(hidden, padding_mask, speaker)
            duration = torch.ceil(torch.exp(log_duration) * padding_mask * length_scale)
            lengths = torch.clamp_min(torch.sum(duration, [1, 2]), 1).long()
            frames = torch.arange(lengths.max(), dtype=lengths.dtype, device=lengths.device)
            out_mask = (frames.unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(1).to(
                padding_mask.dtype)
            attn_mask = torch.unsqueeze(padding_mask, 2) * torch.unsqueeze(out_mask, -1)
            batch, _, out_len, in_len = attn_mask.shape
            cum = torch.cumsum(duration, -1).view(batch * in_len, 1)
            steps = torch.arange(out_len, dtype=duration.dtype, device=duration.device)
            valid = (steps.unsqueeze(0) < cum).to(attn_mask.dtype).view(batch, in_len, out_len)
            padded = valid - nn.functional.pad(valid, [0, 0, 1, 0, 0, 0])[:, :-1]
            attn = padded.unsqueeze(1).transpose(2, 3) * attn_mask
            means = torch.matmul(attn.squeeze(1), encoded.prior_means).transpose(1, 2)
            log_var = torch.matmul(attn.squeeze(1), encoded.prior_log_variances).transpose(1, 2)
            latents = means + torch.randn_like(means) * torch.exp(log_var) * noise_scale
            latents = m.flow(latents, out_mask, speaker, reverse=True)
            waveform = m.decoder(latents * out_mask, speaker)
            return waveform.unsqueeze(1)  # [batch, 1, 1, samples], as Piper graphs give

    return PiperSignature().eval()


def export_onnx(model: Any, target: Path) -> None:
    import torch

    multi = model.config.num_speakers > 1
    wrapper = _wrapper(model)
    ids = torch.tensor([[0, 3, 0, 5, 0, 7, 0, 4, 0]], dtype=torch.long) % \
        model.config.vocab_size
    args: tuple = (ids, torch.tensor([ids.shape[1]]), torch.tensor([0.667, 1.0, 0.8]))
    names = ["input", "input_lengths", "scales"]
    if multi:
        args += (torch.tensor([0]),)
        names.append("sid")
    with torch.no_grad():
        torch.onnx.export(wrapper, args, str(target), input_names=names,
                          output_names=["output"], opset_version=OPSET, dynamo=False,
                          dynamic_axes={"input": {0: "batch", 1: "phonemes"},
                                        "input_lengths": {0: "batch"},
                                        "output": {0: "batch", 3: "samples"}})


def voice_entry(name: str, model: Any, tokenizer: Any, language: str | None) -> dict[str, Any]:
    """``language`` None: the tokenizer's (MMS: ISO 639-3), else English."""
    if not language:
        declared = str(getattr(tokenizer, "language", None) or "")
        language = ISO_639_3.get(declared, declared[:2] if len(declared) == 2 else "en")
    vocab: dict[str, int] = dict(tokenizer.encoder)
    jamo = any("\u1100" <= ch <= "\u11ff" for ch in vocab)
    config = model.config
    return {
        "name": name, "kind": "vits", "model": f"{name}.onnx", "language": language,
        "phoneme_type": "characters", "sample_rate": int(config.sampling_rate),
        "num_speakers": int(config.num_speakers), "speakers": {},
        "noise_scale": float(config.noise_scale),
        "length_scale": float(1.0 / config.speaking_rate),
        "noise_w": float(config.noise_scale_duration),
        "phoneme_id_map": {sym: [i] for sym, i in vocab.items() if len(sym) == 1},
        "characters": {"add_blank": bool(tokenizer.add_blank),
                       "lowercase": bool(tokenizer.normalize),
                       "unicode_form": "NFD" if jamo else "NFC", "pad_id": 0,
                       "uroman": bool(tokenizer.is_uroman)},
    }


def parity(name: str, model: Any, tokenizer: Any, onnx_path: Path, text: str,
           tolerance: float = 1e-3) -> list[ParityFigure]:
    """ONNX Runtime vs VitsModel in PyTorch on the tokenizer's ids, with zero noise."""
    import onnxruntime as ort
    import torch

    from export.parity import max_abs_diff

    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    if ids.shape[1] < 2:
        raise SourceError(f"parity text {text!r} gives no tokens with this tokenizer")
    saved = model.noise_scale, model.noise_scale_duration
    model.noise_scale, model.noise_scale_duration = 0.0, 0.0
    try:
        with torch.no_grad():
            kwargs = {"speaker_id": 0} if model.config.num_speakers > 1 else {}
            reference = model(ids, **kwargs).waveform.reshape(-1).numpy()
    finally:
        model.noise_scale, model.noise_scale_duration = saved
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    feeds = {"input": ids.numpy(), "input_lengths": np.array([ids.shape[1]], np.int64),
             "scales": np.array([0.0, 1.0 / model.config.speaking_rate, 0.0], np.float32)}
    if model.config.num_speakers > 1:
        feeds["sid"] = np.array([0], np.int64)
    exported = session.run(None, feeds)[0].reshape(-1)
    return [max_abs_diff(f"{name}:onnx_vs_pytorch", reference, exported, tolerance)]
