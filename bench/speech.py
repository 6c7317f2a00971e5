"""Real speech for load tests: espeak-ng WAV -> PCM16 mono at the session's rate."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

PHRASES = (
    "Hello, can you tell me what the weather is like today?",
    "What is a good name for a small black cat?",
    "Please tell me a short joke about computers.",
)


def resample(samples: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Linear-interpolation resampling (enough for speech fed to a VAD and Whisper)."""
    if source_rate == target_rate or not samples.size:
        return samples.astype(np.float32)
    duration = samples.size / source_rate
    target = np.arange(int(duration * target_rate)) / target_rate
    return np.interp(target, np.arange(samples.size) / source_rate, samples).astype(np.float32)


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Mono float samples in [-1, 1] and the rate of a PCM16 WAV file."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{path}: only PCM16 WAV files are supported")
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        channels = wav.getnchannels()
        rate = wav.getframerate()
    samples = data.reshape(-1, channels).mean(axis=1) / 32768.0
    return samples.astype(np.float32), rate


def trim_silence(samples: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    """Drop leading and trailing near-silence, so that the end of the clip is the end of
    speech (voice-to-voice latency is measured from there)."""
    loud = np.flatnonzero(np.abs(samples) > threshold)
    return samples[loud[0]:loud[-1] + 1] if loud.size else samples[:0]


def to_pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def espeak(text: str, rate: int, voice: str = "en") -> bytes:
    """``text`` spoken by espeak-ng, as PCM16 LE mono at ``rate`` Hz."""
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speech.wav"
        subprocess.run([binary, "-v", voice, "-w", str(path), text], check=True,
                       capture_output=True, timeout=60)
        samples, source_rate = read_wav(path)
    return to_pcm16(trim_silence(resample(samples, source_rate, rate)))


def load_speech(wav: str | None, rate: int, text: str | None = None) -> bytes:
    """A WAV file's speech, or espeak-ng speaking ``text`` (default: the first phrase)."""
    if wav:
        samples, source_rate = read_wav(wav)
        return to_pcm16(trim_silence(resample(samples, source_rate, rate)))
    return espeak(text or PHRASES[0], rate)
