"""Exported graphs and runtime against openai-whisper in PyTorch, on the same inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from export.parity import max_abs_diff, sequences_equal
from export.repository import ParityFigure

SAMPLE_RATE = 16_000
SIZED_CHECK_FRAMES = 1000  # 10 s


def sample_audio(seconds: float = 8.0) -> np.ndarray:
    """Deterministic speech-like test signal: gliding harmonics with a syllable envelope."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = 140 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = np.clip(np.sin(2 * np.pi * 3.0 * t), 0, None) ** 2
    noise = np.random.default_rng(0).normal(0, 0.01, t.size)
    return (0.3 * voice * envelope + noise).astype(np.float32)


def _relative(value: float, scale: float) -> float:
    return value * max(1.0, scale)


def check(model: Any, directory: Path, audio: np.ndarray) -> list[ParityFigure]:
    """Front end, encoder, decoder logits, language detection and greedy tokens."""
    import whisper

    from export.stt.runtime import (
        N_FRAMES,
        WhisperOnnx,
        WhisperTokenizer,
        WindowDecoder,
        log_mel_spectrogram,
        pad_or_trim,
    )
    from export.stt.runtime.frontend import load_mel_filters

    figures = []
    filters = load_mel_filters(str(directory / "mel_filters.npz"), model.dims.n_mels)
    mel_np = pad_or_trim(log_mel_spectrogram(audio, filters), N_FRAMES)
    mel_ref = whisper.pad_or_trim(whisper.log_mel_spectrogram(torch.from_numpy(audio),
                                                              model.dims.n_mels), N_FRAMES)
    figures.append(max_abs_diff("log_mel", mel_ref.numpy(), mel_np, 1e-3))

    onnx = WhisperOnnx(directory)
    mel = torch.from_numpy(mel_np)[None]
    with torch.no_grad():
        features = model.encoder(mel)
        cross_k_ref = torch.stack([b.cross_attn.key(features) for b in model.decoder.blocks])
    features_onnx, cross_k, cross_v = onnx.encoder.run(None, {"mel": mel.numpy()})
    scale = float(features.abs().max())
    figures.append(max_abs_diff("encoder_output", features.numpy(), features_onnx,
                                _relative(1e-3, scale)))
    figures.append(max_abs_diff("cross_attention_keys", cross_k_ref.numpy(), cross_k,
                                _relative(1e-3, float(cross_k_ref.abs().max()))))
    # The sized encoder (a 10 s window) against the same cut of openai-whisper's encoder.
    from export.stt.graphs import encode_sized

    short = mel[:, :, :SIZED_CHECK_FRAMES]
    with torch.no_grad():
        sized_ref = encode_sized(model.encoder, short)
    sized_onnx = onnx.encoder.run(["audio_features"], {"mel": short.numpy()})[0]
    figures.append(max_abs_diff("sized_encoder_output", sized_ref.numpy(), sized_onnx,
                                _relative(1e-3, float(sized_ref.abs().max()))))

    tokenizer = WhisperTokenizer(directory)
    decoder = WindowDecoder(onnx, tokenizer)
    initial = decoder.initial_tokens("en" if tokenizer.multilingual else None, "transcribe",
                                     [])
    tokens = torch.tensor([[*initial, tokenizer.timestamp_begin]])
    with torch.no_grad():
        logits_ref = model.logits(tokens, features)
    logits, _ = onnx.step(tokens.numpy(), onnx.empty_cache(1), (cross_k, cross_v))
    figures.append(max_abs_diff("decoder_logits", logits_ref.numpy(), logits,
                                _relative(2e-3, float(logits_ref.abs().max()))))

    language = "en"
    if tokenizer.multilingual:
        ref_language = max((p := model.detect_language(mel)[1][0]), key=p.get)
        language = decoder.detect_language((cross_k, cross_v))[0][0]
        figures.append(sequences_equal("detected_language", [[tokenizer.languages[ref_language]]],
                                       [[tokenizer.languages[language]]]))
    options = whisper.DecodingOptions(language=language, temperature=0.0, fp16=False)
    with torch.no_grad():
        reference = whisper.decode(model, mel, options)[0]
    result = decoder.decode((cross_k, cross_v),
                            language=language if tokenizer.multilingual else None)
    figures.append(sequences_equal("greedy_tokens", [reference.tokens], [result.tokens]))
    figures.append(_word_timings(model, onnx, tokenizer, language, mel,
                                 [t for t in reference.tokens if t < tokenizer.eot],
                                 (cross_k, cross_v)))
    return figures


def _word_timings(model: Any, onnx: Any, tokenizer: Any, language: str,
                  mel: torch.Tensor, text_tokens: list[int], cross: Any) -> ParityFigure:
    """Word start and end times from the alignment heads, against openai-whisper's
    ``find_alignment`` on the same tokens (its words must be the same ones)."""
    import whisper.timing
    from whisper.tokenizer import get_tokenizer

    from export.stt.runtime import N_FRAMES
    from export.stt.runtime.timing import align_words

    reference_tokenizer = get_tokenizer(model.is_multilingual,
                                        num_languages=model.num_languages,
                                        language=language, task="transcribe")
    with torch.no_grad():
        expected = whisper.timing.find_alignment(model, reference_tokenizer, text_tokens,
                                                 mel[0], N_FRAMES)
    sot = tokenizer.sot_sequence(language if tokenizer.multilingual else None, "transcribe")
    got = align_words(onnx, tokenizer, text_tokens, sot, cross, N_FRAMES, language)
    if [w.tokens for w in expected] != [w.tokens for w in got]:
        return ParityFigure(name="word_timings", value=float("inf"), tolerance=0.02,
                            passed=False)
    times = [[w.start, w.end] for w in expected] or [[0.0, 0.0]]
    return max_abs_diff("word_timings", np.array(times),
                        np.array([[w.start, w.end] for w in got] or [[0.0, 0.0]]), 0.02)
