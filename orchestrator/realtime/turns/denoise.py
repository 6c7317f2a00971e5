"""Input noise reduction (OpenAI's ``audio.input.noise_reduction``): DeepFilterNet 3 on the
session's input audio, before the turn taker (VAD, Smart Turn) and so before STT.

The model runs at 48 kHz in 10 ms hops; audio arrives at the session's input rate (24 or
16 kHz PCM, 8 kHz G.711) in chunks of any size. :class:`Denoiser` resamples each chunk up
to 48 kHz (:class:`IntegerResampler`: filter state kept between chunks, so no seam per
chunk), holds back the part of a hop that is not complete yet, and resamples the denoised
hops back down to the input rate, so everything after it sees the rate it expects. Added
delay: the model's 30 ms lookahead, the part of a 10 ms hop waiting to fill (none when
chunks are whole hops, as 20 ms chunks are) and the filters' 1-3 ms.

The two OpenAI types map to two attenuation limits (how far the model may turn down
what it judges noise):

* ``near_field`` (headset, phone at the mouth): the voice dominates, so noise is removed
  in full (no limit).
* ``far_field`` (laptop, room microphone): the voice is quieter and reverberant, and a
  model allowed to remove everything also eats distant speech; noise is turned down by at
  most 12 dB, leaving a floor under the voice.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Literal

import numpy as np

from orchestrator.errors import InvalidRequest
from orchestrator.realtime.turns.deepfilter import (
    HOP,
    NO_LIMIT_DB,
    RATE,
    DeepFilter,
    default_library_path,
    default_model_path,
)

log = logging.getLogger(__name__)

NoiseReductionType = Literal["near_field", "far_field"]
ATTEN_LIM_DB: dict[str, float] = {"near_field": NO_LIMIT_DB, "far_field": 12.0}
PARAM = "session.noise_reduction"
FLUSH_MS = 40  # the model's 30 ms lookahead and up to a 10 ms hop not yet complete


class IntegerResampler:
    """Streaming resampling by a whole factor (48 kHz is 2, 3 and 6 times the session
    rates) with one low-pass FIR whose state carries across chunks. Why not the session's
    soxr stream: soxr releases its output in blocks and holds back 11 ms on average (up to
    20 ms, 57 ms from 8 kHz) per direction on 20 ms chunks; this filter holds back none
    and delays by half its length (0.5 ms at 24 kHz, 1.5 ms at 8 kHz)."""

    TAPS_PER_STEP = 24  # stopband past 50 dB: plenty for speech going into a denoiser

    def __init__(self, up: int, down: int) -> None:
        from scipy.signal import firwin

        if min(up, down) != 1:
            raise ValueError("one of up and down must be 1")
        self.up, self.down = up, down
        factor = max(up, down)
        self._taps = (firwin(self.TAPS_PER_STEP * factor + 1, 0.9 / factor) * up) \
            .astype(np.float64)
        self._state = np.zeros(self._taps.size - 1)
        self._position = 0  # input samples seen, mod ``down`` (which of them to keep)

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        from scipy.signal import lfilter

        x = np.asarray(samples, dtype=np.float64)
        if x.size == 0:
            return np.zeros(0, np.float32)
        if self.up > 1:
            stuffed = np.zeros(x.size * self.up)
            stuffed[::self.up] = x
            x = stuffed
        y, self._state = lfilter(self._taps, 1.0, x, zi=self._state)
        if self.down > 1:
            first = -self._position % self.down
            self._position = (self._position + x.size) % self.down
            y = y[first::self.down]
        return y.astype(np.float32)


class Denoiser:
    """One session's noise reduction: chunks at the input rate in, denoised chunks at the
    same rate out (a little shorter at first: the model's lookahead)."""

    def __init__(self, model: DeepFilter, kind: NoiseReductionType, rate: int) -> None:
        self.model = model
        self.kind: NoiseReductionType = kind
        model.set_atten_lim(ATTEN_LIM_DB[kind])
        self._start(rate)

    def _start(self, rate: int) -> None:
        if RATE % rate:
            raise ValueError(f"noise reduction takes 48 kHz / n rates, not {rate}")
        self.rate = rate
        self._up = IntegerResampler(RATE // rate, 1)
        self._down = IntegerResampler(1, RATE // rate)
        self._pending = np.zeros(0, np.float32)  # 48 kHz samples short of a whole hop

    def set_type(self, kind: NoiseReductionType) -> None:
        if kind != self.kind:
            self.kind = kind
            self.model.set_atten_lim(ATTEN_LIM_DB[kind])

    def __call__(self, samples: np.ndarray, rate: int) -> np.ndarray:
        """Denoise one chunk at ``rate``; a new rate (a session.update) starts the
        resamplers afresh (the model's state carries on)."""
        if rate != self.rate:
            self._start(rate)
        up = np.concatenate([self._pending, self._up(samples)])
        whole = up.size - up.size % HOP
        self._pending = up[whole:]
        if not whole:
            return np.zeros(0, np.float32)
        return self._down(self.model.process(up[:whole]))

    def flush(self, rate: int) -> np.ndarray:
        """What the model still holds (its lookahead and the part of a hop waiting),
        pushed out with silence: a manual commit must not lose its last 30-40 ms."""
        return self(np.zeros(rate * FLUSH_MS // 1000, np.float32), rate)

    def close(self) -> None:
        self.model.close()


def check_available(model_path: str | Path | None) -> None:
    """The model and runtime files exist (a cheap check for a client secret minted with
    noise reduction: refused now, not when the secret is used)."""
    try:
        model = Path(model_path) if model_path else default_model_path()
        if not model.is_file():
            raise FileNotFoundError(f"DeepFilterNet model {model} not found")
        default_library_path()
    except FileNotFoundError as exc:
        raise InvalidRequest(f"noise_reduction is unavailable on this server: {exc}",
                             param=PARAM) from None


async def load_denoiser(kind: NoiseReductionType, rate: int,
                        model_path: str | Path | None) -> Denoiser:
    """A new stream of the model (each loads its own copy: about 0.3 s, so off the event
    loop); missing files are the client's error naming the field, as for semantic_vad."""
    try:
        model = await asyncio.to_thread(DeepFilter, model_path)
    except (OSError, RuntimeError) as exc:
        log.warning("noise reduction unavailable: %s", exc)
        raise InvalidRequest(f"noise_reduction is unavailable on this server: {exc}",
                             param=PARAM) from None
    return Denoiser(model, kind, rate)
