"""The tts Triton model over gRPC streaming: the real Piper voice equals onnxruntime run
directly on the same ids, one chunk per sentence in order then final, Korean through a
character VITS voice, multi-speaker voices, and clear errors."""

from __future__ import annotations

import json
import re

import numpy as np
import onnxruntime as ort
import pytest

from tests.integration.tts.conftest import KOREAN_VOICE
from tests.support.tts import (
    JOE_VOICE,
    TtsStreamError,
    by_sentence,
    joe_voice_path,
    synthesize,
)

pytestmark = [pytest.mark.triton, pytest.mark.realweights]

SENTENCES = ["The quick brown fox jumps over the lazy dog.", "It cost $12.50 on March 3rd!",
             "Is Dr. Smith at home?"]


def direct_onnxruntime(ids: list[int], length_scale: float = 1.0) -> np.ndarray:
    session = ort.InferenceSession(str(joe_voice_path()), providers=["CPUExecutionProvider"])
    out = session.run(None, {"input": np.array([ids], np.int64),
                             "input_lengths": np.array([len(ids)], np.int64),
                             "scales": np.array([0.0, length_scale, 0.0], np.float32)})[0]
    return np.clip(out.reshape(-1), -1, 1)


def served_ids(version_dir, sentence: str) -> list[int]:  # type: ignore[no-untyped-def]
    from export.tts.parity import load_runtime

    runtime = load_runtime(version_dir)
    synthesizer = runtime.Synthesizer(version_dir)
    voice = synthesizer.voices[JOE_VOICE]
    return voice.text_ids(runtime.normalize.normalize(sentence, "en"))[0]


def test_piper_voice_streams_sentences_equal_to_onnxruntime(triton_server, tts_model) -> None:  # type: ignore[no-untyped-def]
    responses = synthesize(triton_server.grpc_url, " ".join(SENTENCES), voice=JOE_VOICE,
                           noise_scale=0.0, noise_w=0.0)
    assert [r.final for r in responses] == [False] * (len(responses) - 1) + [True]
    assert responses[-1].audio.size == 0 and responses[-1].sentence == ""
    assert {r.sample_rate for r in responses} == {22050}
    # Each sentence in pieces, as decoded: 20 frames of 256 samples first.
    assert responses[0].sentence == SENTENCES[0] and responses[0].audio.size == 20 * 256
    sentences = by_sentence(responses)
    assert [r.sentence for r in sentences] == SENTENCES
    assert len(responses) - 1 > len(SENTENCES)
    for sentence, response in zip(SENTENCES, sentences, strict=True):
        expected = direct_onnxruntime(served_ids(tts_model, sentence))
        assert response.audio.shape == expected.shape
        assert float(np.max(np.abs(response.audio - expected))) <= 1e-4
        assert float(np.max(np.abs(expected))) > 0.05  # real speech, not silence


def test_default_voice_and_speed(triton_server, tts_model) -> None:  # type: ignore[no-untyped-def]
    sentence = SENTENCES[0]
    normal = by_sentence(synthesize(triton_server.grpc_url, sentence, noise_scale=0.0,
                                    noise_w=0.0))
    fast = by_sentence(synthesize(triton_server.grpc_url, sentence, voice="", speed=2.0,
                                  noise_scale=0.0, noise_w=0.0))
    expected = direct_onnxruntime(served_ids(tts_model, sentence), length_scale=0.5)
    assert np.max(np.abs(fast[0].audio - expected)) <= 1e-4
    # Durations are rounded up per phoneme, so twice the speed is a bit over half as long.
    assert 0.45 < fast[0].audio.size / normal[0].audio.size < 0.65


def test_korean_text_through_a_character_vits_voice(triton_server, tts_model) -> None:  # type: ignore[no-untyped-def]
    text = "안녕하세요. 오늘은 2024년 3월 14일입니다! 사과 3개는 10,000원입니다."
    for speaker in ("", "#0", "#1"):
        responses = synthesize(triton_server.grpc_url, text, voice=KOREAN_VOICE + speaker)
        chunks = responses[:-1]
        assert [c.sentence for c in chunks] == ["안녕하세요.", "오늘은 2024년 3월 14일입니다!",
                                                "사과 3개는 10,000원입니다."]
        assert all(c.audio.size > 0 and c.sample_rate == 16000 for c in chunks)
        assert all(np.isfinite(c.audio).all() and np.abs(c.audio).max() <= 1.0 for c in chunks)
    voices = json.loads((tts_model / "voices.json").read_text(encoding="utf-8"))
    korean = next(v for v in voices["voices"] if v["name"] == KOREAN_VOICE)
    assert korean["num_speakers"] == 2 and korean["language"] == "ko"


def test_characters_a_voice_cannot_say_are_dropped_not_fatal(triton_server, tts_model) -> None:  # type: ignore[no-untyped-def]
    responses = synthesize(triton_server.grpc_url, "안녕 ☃ zebra 😀 하세요.", voice=KOREAN_VOICE)
    assert responses[-1].final and responses[0].audio.size > 0
    log = triton_server.log_path.read_text(errors="replace")
    assert "cannot say" in log and "☃" in log


@pytest.mark.parametrize(("options", "message"), [
    ({"voice": "nobody"}, "unknown voice 'nobody'"),
    ({"voice": f"{JOE_VOICE}#2"}, "has a single speaker"),
    ({"voice": f"{KOREAN_VOICE}#7"}, "has no speaker '7'"),
    ({"speed": 5.0}, "speed 5.0 is outside 0.25..4.0"),
    ({"speed": 0.1}, "outside 0.25..4.0"),
    ({"text": "   "}, "text is empty"),
    ({"text": "word " * 1000}, "the limit is 4096"),
    ({"noise_scale": -1.0}, "noise_scale -1.0 is outside 0..2"),
])
def test_bad_requests_fail_with_clear_errors(triton_server, tts_model, options, message) -> None:  # type: ignore[no-untyped-def]
    text = options.pop("text", "Hello there.")
    with pytest.raises(TtsStreamError, match=re.escape(message)):
        synthesize(triton_server.grpc_url, text, **options)


def test_leaving_the_stream_early_cancels_synthesis(triton_server, tts_model) -> None:  # type: ignore[no-untyped-def]
    """A client that stops listening (barge-in) stops the remaining sentences."""
    import asyncio
    import time

    from export.specs import tts as spec
    from orchestrator.inference.client import TritonClient

    request_id = "tts-cancel-test"
    text = " ".join(f"This is sentence number {n} of a long answer." for n in range(1, 30))

    async def first_chunk_then_leave() -> str:
        client = TritonClient(triton_server.grpc_url, timeout_s=120)
        try:
            async for item in client.stream(spec.SPEC, {spec.TEXT: [text]},
                                            request_id=request_id):
                return item.text(spec.SENTENCE)
        finally:
            await client.close()
        return ""

    assert asyncio.run(first_chunk_then_leave()) == "This is sentence number 1 of a long answer."
    pattern = re.compile(rf"tts: request '{request_id}' cancelled after (\d+) chunks")
    deadline = time.monotonic() + 30
    while not (found := pattern.search(triton_server.log_path.read_text(errors="replace"))):
        assert time.monotonic() < deadline, "no cancellation logged"
        time.sleep(0.2)
    assert 1 <= int(found[1]) < 30  # of 29 sentences in about 3 pieces each
