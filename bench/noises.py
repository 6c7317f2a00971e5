"""Synthetic noises for the noise-reduction bench and tests (no recorded noise ships in a
reachable package): white, pink (1/f, like fans and air), babble (several espeak-ng
voices at once, far away: a café), a 100 Hz hum with harmonics (mains, engines) and
knocks (low thuds: footsteps, a door, a desk being hit; the one of these that Silero
VAD takes for speech now and then).

Seeded, so every run mixes the same noise; :func:`mix` scales it to a given SNR over
the speech's own power.
"""

from __future__ import annotations

import numpy as np

NOISES = ("white", "pink", "babble")


def white(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(n).astype(np.float32)


def pink(n: int, rng: np.random.Generator) -> np.ndarray:
    """White noise shaped to 1/f power in the frequency domain."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.arange(spectrum.size, dtype=np.float64)
    freqs[0] = 1.0
    shaped = np.fft.irfft(spectrum / np.sqrt(freqs), n)
    return (shaped / shaped.std()).astype(np.float32)


def babble(n: int, rng: np.random.Generator, voices: list[np.ndarray]) -> np.ndarray:
    """Talkers over each other: each voice looped from a random offset, summed. With six
    or more no single one is intelligible (speech-shaped, modulated noise)."""
    out = np.zeros(n, np.float64)
    for voice in voices:
        looped = np.tile(voice, n // voice.size + 2)
        start = int(rng.integers(0, voice.size))
        out += looped[start:start + n]
    return (out / (out.std() or 1.0)).astype(np.float32)


def hum(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / rate
    wave = sum(np.sin(2 * np.pi * 100 * k * t + rng.uniform(0, 6.3)) / k for k in range(1, 8))
    return (wave / np.std(wave)).astype(np.float32)


def knocks(n: int, rate: int, rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` thuds at random times: 60-150 Hz sines decaying in about 40 ms."""
    out = np.zeros(n, np.float64)
    length = rate // 5
    decay = np.exp(-np.arange(length) / (rate * 0.0375))
    for start in rng.integers(0, max(1, n - length), count):
        tone = np.sin(2 * np.pi * rng.uniform(60, 150) * np.arange(length) / rate)
        out[start:start + length] += (tone * decay)[:n - start]
    return (out / (np.abs(out).max() or 1.0)).astype(np.float32)


def mix(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``speech`` plus ``noise`` scaled to ``snr_db`` below the speech's power (over its
    voiced part: silence around the words would flatter the SNR)."""
    voiced = speech[np.abs(speech) > 0.01 * np.abs(speech).max()]
    power = float(np.mean(voiced.astype(np.float64) ** 2))
    noise = noise[:speech.size].astype(np.float64)
    scale = np.sqrt(power / np.mean(noise ** 2)) * 10 ** (-snr_db / 20)
    return (speech + scale * noise).astype(np.float32)
