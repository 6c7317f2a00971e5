"""The served ``stt`` model (real Triton, real export path, tiny random Whisper) returns
exactly what openai-whisper's own transcribe() at temperature 0 returns."""

from __future__ import annotations

import numpy as np
import pytest
import whisper

from export.parity import sequences_equal
from export.stt.parity import sample_audio
from orchestrator.errors import InferenceInvalidInput
from orchestrator.inference.client import TritonClient
from orchestrator.speech.stt import SpeechToText

pytestmark = [pytest.mark.triton]


@pytest.fixture
async def stt(triton_server, tiny_stt):  # type: ignore[no-untyped-def]
    client = TritonClient(triton_server.grpc_url, timeout_s=300)
    # Other stt versions (real weights) are served beside the tiny one: pin it.
    client.default_versions["stt"] = str(tiny_stt[1])
    yield SpeechToText(client)
    await client.close()


def _reference(model, audio: np.ndarray, **options):  # type: ignore[no-untyped-def]
    return whisper.transcribe(model, audio, temperature=0.0, fp16=False, **options)


def _speechlike(seconds: float, seed: int) -> np.ndarray:
    audio = np.tile(sample_audio(8.0), int(np.ceil(seconds / 8.0)))[: int(seconds * 16_000)]
    rng = np.random.default_rng(seed)
    return (audio * rng.uniform(0.5, 1.5) + rng.normal(0, 0.02, audio.size)).astype(np.float32)


CASES = {
    "detect-language": (lambda: _speechlike(6.0, 1), {}),
    "english": (lambda: _speechlike(4.0, 2), {"language": "en"}),
    "prompt": (lambda: _speechlike(5.0, 3), {"language": "de", "prompt": "Guten Morgen"}),
    "translate": (lambda: _speechlike(3.0, 4), {"language": "fr", "task": "translate"}),
    "45-seconds": (lambda: _speechlike(45.0, 5), {"language": "en"}),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_served_tokens_equal_openai_whisper(tiny_stt, stt, case: str) -> None:  # type: ignore[no-untyped-def]
    model, version = tiny_stt
    make_audio, options = CASES[case]
    audio = make_audio()
    ref = _reference(model, audio, language=options.get("language"),
                     task=options.get("task", "transcribe"),
                     initial_prompt=options.get("prompt"))
    got = await stt.transcribe(audio, **options)
    assert got.model_version == str(version)
    assert got.language == ref["language"]
    assert sequences_equal("tokens", [s["tokens"] for s in ref["segments"]],
                           [list(s.tokens) for s in got.segments]).passed
    assert got.text == ref["text"].strip()
    assert [(s["start"], s["end"]) for s in ref["segments"]] == \
        [(s.start, s.end) for s in got.segments]
    assert got.duration_s == pytest.approx(audio.size / 16_000, abs=0.01)


async def test_concurrent_requests_batch_and_stay_exact(tiny_stt, stt) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    model, _ = tiny_stt
    audios = [_speechlike(4.0, 10 + i) for i in range(3)]  # equal lengths: Triton batches them
    results = await asyncio.gather(*(stt.transcribe(a, language="en") for a in audios))
    for audio, got in zip(audios, results, strict=True):
        assert got.text == _reference(model, audio, language="en")["text"].strip()


async def test_silence_gives_empty_text(tiny_stt, stt) -> None:  # type: ignore[no-untyped-def]
    model, _ = tiny_stt
    silence = np.zeros(16_000 * 3, np.float32)
    ref = _reference(model, silence, language="en")
    got = await stt.transcribe(silence, language="en")
    assert got.text == ref["text"].strip()


@pytest.mark.parametrize(("kwargs", "audio", "message"), [
    ({"language": "klingon"}, np.zeros(16_000, np.float32), "unsupported language"),
    ({}, np.full(16_000, np.nan, np.float32), "NaN"),
])
async def test_bad_input_is_invalid_argument(tiny_stt, stt, kwargs, audio, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InferenceInvalidInput, match=message):
        await stt.transcribe(audio, **kwargs)


async def test_long_audio_goes_in_chunks_that_short_requests_overtake(tiny_stt, stt) -> None:  # type: ignore[no-untyped-def]
    """A long upload is several requests of at most STT_CHUNK_SECONDS: its result is the
    chunks' results joined, and a short request sent meanwhile is answered between two
    chunks instead of after the whole upload."""
    import asyncio

    from orchestrator.speech.stt import chunk_bounds

    chunked = SpeechToText(stt.client, chunk_s=8.0)
    audio = _speechlike(40.0, 7)
    bounds = chunk_bounds(audio, chunked.chunk_samples)
    assert 5 <= len(bounds) <= 7 and all(6 * 16000 <= end - start <= 8 * 16000
                                         for start, end in bounds[:-1])
    parts = [await stt.transcribe(audio[s:e], language="en") for s, e in bounds]
    done: list[str] = []

    async def long() -> object:
        result = await chunked.transcribe(audio, language="en")
        done.append("long")
        return result

    async def short() -> None:
        await asyncio.sleep(0.3)  # the upload's first chunk is in the model by now
        await stt.transcribe(_speechlike(1.0, 8), language="en")
        done.append("short")

    result, _ = await asyncio.gather(long(), short())
    assert done == ["short", "long"]
    assert result.text == " ".join(p.text for p in parts if p.text)
    assert [s.id for s in result.segments] == list(range(len(result.segments)))
    starts = [s.start for s in result.segments]
    assert starts == sorted(starts) and result.segments[-1].end <= 40.0 + 1e-3
    assert result.duration_s == pytest.approx(40.0)


async def test_sized_windows_match_openai_whisper_on_the_same_cut(tiny_stt, stt,  # type: ignore[no-untyped-def]
                                                                  triton_server) -> None:
    """min_window_seconds=10: a 4 s clip is encoded as a 10 s window, not 30 s; the tokens
    are openai-whisper's for the same 10 s mel with its positional embedding cut alike."""
    import json

    import torch

    from export.repository import ModelRepository
    from export.specs.stt import SPEC
    from export.stt.graphs import encode_sized
    from tests.support import triton as triton_support
    from tests.support.stt_fixtures import serve_every_version

    model, _ = tiny_stt
    audio = _speechlike(4.0, 9)
    versions = ModelRepository(triton_server.repository).versions("stt")
    sized = SPEC.config_json(versions=versions, parameters={"min_window_seconds": "10"})
    triton_support.load(triton_server, "stt", config=json.dumps(sized))
    try:
        got = await stt.transcribe(audio, language="en")
    finally:
        serve_every_version(triton_server)
    mel = whisper.log_mel_spectrogram(torch.from_numpy(audio), model.dims.n_mels,
                                      padding=whisper.audio.N_SAMPLES)
    window = whisper.pad_or_trim(mel[:, :400], 1000)  # 4 s of audio in a 10 s window
    original = model.encoder.forward
    model.encoder.forward = lambda x: encode_sized(model.encoder, x)
    try:
        ref = whisper.decode(model, window, whisper.DecodingOptions(
            language="en", temperature=0.0, fp16=False, without_timestamps=False))
    finally:
        model.encoder.forward = original
    first = list(got.segments[0].tokens)  # the first window's tokens, split into segments
    assert first and ref.tokens[:len(first)] == first
