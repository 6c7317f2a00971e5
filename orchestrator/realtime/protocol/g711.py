"""G.711 μ-law and A-law (ITU-T G.711), the 8 kHz telephony codecs of OpenAI's realtime
``g711_ulaw`` / ``g711_alaw`` (``audio/pcmu`` / ``audio/pcma``) formats.

Lookup tables built once with numpy (``audioop`` is gone from Python 3.13). Decoding is
exact; encoding follows the reference segment search of Sun's ``g711.c``, so a decoded
code encodes back to itself.
"""

from __future__ import annotations

import numpy as np

RATE = 8000
_CODES = np.arange(256, dtype=np.int32)


def _ulaw_to_linear(codes: np.ndarray) -> np.ndarray:
    u = ~codes & 0xFF
    exponent, mantissa = (u >> 4) & 0x07, u & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(u & 0x80, -magnitude, magnitude)


def _alaw_to_linear(codes: np.ndarray) -> np.ndarray:
    a = codes ^ 0x55
    exponent, mantissa = (a >> 4) & 0x07, (a & 0x0F) << 4
    magnitude = np.where(exponent == 0, mantissa + 8,
                         (mantissa + 0x108) << np.maximum(exponent - 1, 0))
    return np.where(a & 0x80, magnitude, -magnitude)


_ULAW_DECODE = _ulaw_to_linear(_CODES).astype(np.int16)
_ALAW_DECODE = _alaw_to_linear(_CODES).astype(np.int16)


def _segment(magnitude: np.ndarray, first: int) -> np.ndarray:
    """The G.711 segment (0-7) of each magnitude: segment s ends below 2**(first + s)."""
    bits = np.floor(np.log2(np.maximum(magnitude, 1))).astype(np.int32)
    return np.clip(bits - first + 1, 0, 7)


def _linear_to_ulaw(pcm: np.ndarray) -> np.ndarray:
    # 14-bit magnitudes as in g711.c: a negative sample is one step lower than its mirror
    p = pcm.astype(np.int32) >> 2
    mask = np.where(p < 0, 0x7F, 0xFF)
    p = np.minimum(np.abs(p), 8159) + 33
    bits = np.floor(np.log2(p)).astype(np.int32)
    segment = np.clip(bits - 5, 0, 7)
    code = (segment << 4) | ((p >> (segment + 1)) & 0x0F)
    code = np.where(bits - 5 > 7, 0x7F, code)
    return ((code ^ mask) & 0xFF).astype(np.uint8)


def _linear_to_alaw(pcm: np.ndarray) -> np.ndarray:
    pcm = pcm.astype(np.int32)
    mask = np.where(pcm >= 0, 0xD5, 0x55)
    magnitude = np.minimum(np.where(pcm >= 0, pcm, -pcm - 1), 32767)
    exponent = _segment(magnitude, 8)
    mantissa = np.where(exponent == 0, magnitude >> 4, magnitude >> (exponent + 3)) & 0x0F
    return (((exponent << 4) | mantissa) ^ mask).astype(np.uint8)


# Encoding by table too: every 16-bit value, once (64 K entries each).
_ALL_PCM = np.arange(-32768, 32768, dtype=np.int32)
_ULAW_ENCODE = _linear_to_ulaw(_ALL_PCM)
_ALAW_ENCODE = _linear_to_alaw(_ALL_PCM)


def decode(data: bytes, law: str) -> np.ndarray:
    """G.711 bytes -> float32 samples in [-1, 1) (8 kHz, as they came)."""
    table = _ULAW_DECODE if law == "ulaw" else _ALAW_DECODE
    return table[np.frombuffer(data, dtype=np.uint8)].astype(np.float32) / 32768.0


def encode(samples: np.ndarray, law: str) -> bytes:
    """float32 samples -> G.711 bytes (the caller resamples to 8 kHz first)."""
    pcm = (np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0) * 32767.0).round()
    table = _ULAW_ENCODE if law == "ulaw" else _ALAW_ENCODE
    return table[pcm.astype(np.int32) + 32768].tobytes()
