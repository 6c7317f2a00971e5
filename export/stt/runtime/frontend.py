"""Log-mel spectrogram in numpy, numerically matching ``whisper.log_mel_spectrogram``.

torch.stft(center=True) reflect-pads n_fft/2 on both sides and uses a periodic Hann
window; whisper drops the last STFT frame, applies the mel filter bank shipped in its
assets (copied into each exported version), then clamps to 8 decades below the global
maximum of the whole (padded) recording — so the spectrogram of a long recording must be
computed in one piece, as whisper does, not window by window.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16_000
N_FFT = 400
HOP_LENGTH = 160
CHUNK_LENGTH = 30
N_SAMPLES = CHUNK_LENGTH * SAMPLE_RATE  # 480000 samples in a 30-second window
N_FRAMES = N_SAMPLES // HOP_LENGTH  # 3000 frames in a mel window
FRAMES_PER_SECOND = SAMPLE_RATE // HOP_LENGTH  # 100

_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)


def load_mel_filters(path: str, n_mels: int) -> np.ndarray:
    """The filter bank from whisper's ``assets/mel_filters.npz`` ([n_mels, 201])."""
    with np.load(path, allow_pickle=False) as f:
        return np.asarray(f[f"mel_{n_mels}"], dtype=np.float32)


def log_mel_spectrogram(audio: np.ndarray, filters: np.ndarray, padding: int = 0) -> np.ndarray:
    """[n_mels, n_frames] float32 log-mel of 16 kHz mono ``audio`` (zero-padded by ``padding``)."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if padding:
        audio = np.pad(audio, (0, padding))
    half = N_FFT // 2
    if audio.size <= half:
        raise ValueError(f"audio too short for the STFT: {audio.size} samples")
    padded = np.pad(audio, (half, half), mode="reflect")
    n_frames = 1 + (padded.size - N_FFT) // HOP_LENGTH
    frames = np.lib.stride_tricks.as_strided(
        padded, shape=(n_frames, N_FFT),
        strides=(padded.strides[0] * HOP_LENGTH, padded.strides[0]))
    # whisper drops the last frame; float32 products keep the results close to torch's.
    spectrum = np.fft.rfft(frames[:-1] * _WINDOW, axis=-1)
    magnitudes = (spectrum.real ** 2 + spectrum.imag ** 2).astype(np.float32)
    mel = filters @ magnitudes.T
    log_spec = np.log10(np.maximum(mel, 1e-10))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).astype(np.float32)


def pad_or_trim(mel: np.ndarray, length: int = N_FRAMES) -> np.ndarray:
    """Zero-pad or cut the last axis to ``length`` (whisper.pad_or_trim)."""
    if mel.shape[-1] > length:
        return mel[..., :length]
    if mel.shape[-1] < length:
        pad = [(0, 0)] * (mel.ndim - 1) + [(0, length - mel.shape[-1])]
        return np.pad(mel, pad)
    return mel
