"""``audio.input.noise_reduction`` over ``WS /v1/realtime``: accepted and shown in
``session.updated`` (GA and beta names), ``null`` turns it off, a bad type is refused
naming the field, and with it on the audio the VAD and STT get is denoised: quieter noise
for the STT, no false speech start on knocks (the real DeepFilterNet 3 and Silero VAD;
fake STT that records what it was given)."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
import websockets

from bench.noises import knocks, mix, white
from orchestrator.realtime.audio import float_to_pcm16
from tests.support.fake_voice import FakeSTT, fake_services, silence, speak
from tests.support.realtime import live_server

pytestmark = pytest.mark.asyncio
deepfilter = pytest.importorskip("orchestrator.realtime.turns.deepfilter")
try:
    deepfilter.default_model_path()
except FileNotFoundError as exc:
    pytest.skip(f"DeepFilterNet weights missing: {exc}", allow_module_level=True)

VAD = {"type": "server_vad", "silence_duration_ms": 400, "prefix_padding_ms": 300}


class RecordingSTT(FakeSTT):
    def __init__(self) -> None:
        super().__init__("book a table for two")
        self.audio: list[np.ndarray] = []

    async def transcribe(self, audio, **options):  # type: ignore[no-untyped-def]
        self.audio.append(np.asarray(audio, np.float32).copy())
        return await super().transcribe(audio, **options)


@pytest.fixture
async def live(tmp_path):  # type: ignore[no-untyped-def]
    async with live_server(tmp_path, realtime_turn_detection="server_vad",
                           realtime_speculate_ms=0, realtime_partial_interval_ms=0) as server:
        yield server


async def recv_until(ws, kind: str, wait_s: float = 30.0) -> dict:  # type: ignore[no-untyped-def]
    while True:
        event = json.loads(await asyncio.wait_for(ws.recv(), wait_s))
        if event["type"] in (kind, "error"):
            return event


async def test_ga_noise_reduction_is_shown_and_null_turns_it_off(live) -> None:
    live.use(fake_services())
    async with websockets.connect(f"{live.ws_url}/v1/realtime?model=llm") as ws:
        created = await recv_until(ws, "session.created")
        assert created["session"]["audio"]["input"]["noise_reduction"] is None
        for setting in ({"type": "near_field"}, {"type": "far_field"}, None):
            await ws.send(json.dumps({"type": "session.update", "session": {
                "type": "realtime", "audio": {"input": {"noise_reduction": setting}}}}))
            updated = await recv_until(ws, "session.updated")
            assert updated["type"] == "session.updated", updated
            assert updated["session"]["audio"]["input"]["noise_reduction"] == setting


async def test_beta_input_audio_noise_reduction_is_shown(live) -> None:
    live.use(fake_services())
    async with websockets.connect(f"{live.ws_url}/v1/realtime?model=llm",
                                  additional_headers={"OpenAI-Beta": "realtime=v1"}) as ws:
        await recv_until(ws, "session.created")
        await ws.send(json.dumps({"type": "session.update", "session": {
            "input_audio_noise_reduction": {"type": "near_field"}}}))
        updated = await recv_until(ws, "session.updated")
        assert updated["session"]["input_audio_noise_reduction"] == {"type": "near_field"}


@pytest.mark.parametrize(("headers", "session", "param"), [
    ({}, {"type": "realtime", "audio": {"input": {"noise_reduction": {"type": "loud"}}}},
     "session.audio.input.noise_reduction.type"),
    ({"OpenAI-Beta": "realtime=v1"}, {"input_audio_noise_reduction": {"type": "loud"}},
     "session.input_audio_noise_reduction.type"),
])
async def test_a_bad_type_is_refused_naming_the_field(live, headers, session, param) -> None:
    live.use(fake_services())
    async with websockets.connect(f"{live.ws_url}/v1/realtime?model=llm",
                                  additional_headers=headers) as ws:
        await recv_until(ws, "session.created")
        await ws.send(json.dumps({"type": "session.update", "session": session}))
        error = await recv_until(ws, "session.updated")
    assert error["type"] == "error" and error["error"]["param"] == param, error


async def test_missing_weights_refuse_the_field(tmp_path) -> None:
    async with live_server(tmp_path, realtime_turn_detection="server_vad",
                           denoise_model_path=str(tmp_path / "missing.tar.gz")) as live:
        live.use(fake_services())
        async with websockets.connect(f"{live.ws_url}/v1/realtime?model=llm") as ws:
            await recv_until(ws, "session.created")
            await ws.send(json.dumps({"type": "session.update", "session": {
                "type": "realtime", "audio": {"input": {"noise_reduction": {
                    "type": "near_field"}}}}}))
            error = await recv_until(ws, "session.updated")
    assert error["type"] == "error", error
    assert "noise_reduction" in error["error"]["message"]
    assert error["error"]["param"] == "session.noise_reduction"


async def turn_audio_heard(live, tmp_path, noise_reduction) -> np.ndarray:  # type: ignore[no-untyped-def]
    """One spoken turn in white noise (10 dB SNR), sent in 20 ms chunks at 24 kHz: the
    audio the STT was given."""
    stt = RecordingSTT()
    live.use(fake_services(stt=stt))
    speech = speak("Please book a table for two at seven tonight.", tmp_path, 24000)
    clean = np.concatenate([silence(1.0, 24000), speech, silence(1.5, 24000)])
    noisy = mix(clean, white(clean.size, np.random.default_rng(11)), snr_db=10.0)
    pcm = float_to_pcm16(noisy)
    async with websockets.connect(f"{live.ws_url}/v1/realtime?model=llm") as ws:
        await recv_until(ws, "session.created")
        await ws.send(json.dumps({"type": "session.update", "session": {
            "type": "realtime", "output_modalities": ["text"], "audio": {"input": {
                "turn_detection": VAD, "noise_reduction": noise_reduction}}}}))
        assert (await recv_until(ws, "session.updated"))["type"] == "session.updated"
        step = 24000 * 20 // 1000 * 2
        for start in range(0, len(pcm), step):
            await ws.send(pcm[start:start + step])
        done = await recv_until(ws, "conversation.item.input_audio_transcription.completed")
        assert done["type"] != "error", done
    assert len(stt.audio) == 1
    return stt.audio[0]


async def test_with_noise_reduction_the_stt_hears_denoised_audio(live, tmp_path) -> None:
    """The turn starts with the VAD's 300 ms of prefix padding, noise only: its level is
    the noise the STT hears. DeepFilterNet takes it down by well over 10 dB."""
    plain = await turn_audio_heard(live, tmp_path, None)
    denoised = await turn_audio_heard(live, tmp_path, {"type": "near_field"})
    head = 16000 * 200 // 1000  # 200 ms at the STT's 16 kHz, inside the padding

    def level(x: np.ndarray) -> float:
        return float(np.sqrt(np.mean(x[:head].astype(np.float64) ** 2)))
    assert 20 * np.log10(level(plain) / max(level(denoised), 1e-9)) > 10.0, \
        (level(plain), level(denoised))


async def speech_starts_on(live, noise: np.ndarray, noise_reduction) -> int:  # type: ignore[no-untyped-def]
    """``input_audio_buffer.speech_started`` events while ``noise`` (24 kHz) is sent in
    20 ms chunks; a ``session.update`` after it marks the end (events keep their order)."""
    live.use(fake_services())
    pcm = float_to_pcm16(noise)
    async with websockets.connect(f"{live.ws_url}/v1/realtime?model=llm") as ws:
        await recv_until(ws, "session.created")
        await ws.send(json.dumps({"type": "session.update", "session": {
            "type": "realtime", "audio": {"input": {
                "turn_detection": {"type": "server_vad"}, "noise_reduction": noise_reduction}}}}))
        assert (await recv_until(ws, "session.updated"))["type"] == "session.updated"
        step = 24000 * 20 // 1000 * 2
        for start in range(0, len(pcm), step):
            await ws.send(pcm[start:start + step])
        await ws.send(json.dumps({"type": "session.update", "session": {"instructions": "x"}}))
        starts = 0
        while True:
            event = json.loads(await asyncio.wait_for(ws.recv(), 30))
            starts += event["type"] == "input_audio_buffer.speech_started"
            if event["type"] in ("session.updated", "error"):
                return starts


async def test_knocks_that_start_a_turn_start_none_with_noise_reduction(live) -> None:
    """Silero VAD takes few noises for speech; this seeded run of knocks (low thuds) is one
    at server_vad's default threshold. Denoised, the same audio starts no turn: no false
    barge-in."""
    noise = 0.2 * knocks(24000 * 10, 24000, np.random.default_rng(0), 20)
    assert await speech_starts_on(live, noise, None) >= 1
    assert await speech_starts_on(live, noise, {"type": "near_field"}) == 0


@pytest.mark.parametrize("beta", [False, True], ids=["ga", "beta"])
async def test_a_client_secret_minted_with_noise_reduction_applies_it(tmp_path, beta) -> None:
    """The grant keeps the engine's name (``noise_reduction``); each protocol gets its own
    back when the secret is used."""
    import httpx

    async with live_server(tmp_path, realtime_turn_detection="server_vad", auth_mode="required",
                           admin_api_key="admin-key-0123456789abcdef") as live:
        live.use(fake_services())
        key = (await live.runtime.keys.create("alice")).secret
        headers = {"Authorization": f"Bearer {key}",
                   **({"OpenAI-Beta": "realtime=v1"} if beta else {})}
        body = {"input_audio_noise_reduction": {"type": "far_field"}} if beta else \
            {"type": "realtime", "audio": {"input": {"noise_reduction": {"type": "far_field"}}}}
        async with httpx.AsyncClient(base_url=live.base_url) as http:
            r = await http.post("/v1/realtime/client_secrets", json={"session": body},
                                headers=headers)
        assert r.status_code == 200, r.text
        async with websockets.connect(
                f"{live.ws_url}/v1/realtime",
                additional_headers={"Authorization": f"Bearer {r.json()['value']}",
                                    **({"OpenAI-Beta": "realtime=v1"} if beta else {})}) as ws:
            await recv_until(ws, "session.created")
            updated = await recv_until(ws, "session.updated")
    assert updated["type"] == "session.updated", updated
    shown = updated["session"]["input_audio_noise_reduction"] if beta else \
        updated["session"]["audio"]["input"]["noise_reduction"]
    assert shown == {"type": "far_field"}


async def test_a_client_secret_with_noise_reduction_is_refused_without_the_weights(
        tmp_path) -> None:
    import httpx

    async with live_server(tmp_path, auth_mode="required",
                           admin_api_key="admin-key-0123456789abcdef",
                           denoise_model_path=str(tmp_path / "missing.tar.gz")) as live:
        live.use(fake_services())
        key = (await live.runtime.keys.create("alice")).secret
        async with httpx.AsyncClient(base_url=live.base_url) as http:
            r = await http.post("/v1/realtime/client_secrets", headers={
                "Authorization": f"Bearer {key}"}, json={"session": {
                    "type": "realtime", "audio": {"input": {"noise_reduction": {
                        "type": "near_field"}}}}})
    assert r.status_code == 400, r.text
    assert "noise_reduction" in r.text and "session.noise_reduction" in r.text


async def test_ws_engine_field_and_a_manual_commit_keep_the_whole_turn(live, tmp_path) -> None:
    """``/ws`` takes the engine's ``noise_reduction``; a manual commit pushes out what the
    model holds (it delays the audio by 30 ms, and part of a hop may wait), so the STT
    gets at least as much audio as was sent (at 16 kHz)."""
    stt = RecordingSTT()
    live.use(fake_services(stt=stt))
    session_id = await live.new_session("alice")
    speech = speak("Please book a table for two.", tmp_path, 24000)
    async with live.connect("alice", session_id) as client:
        await client.until("session.created")
        await client.send("session.update", session={
            "turn_detection": None, "noise_reduction": {"type": "near_field"}})
        updated = (await client.until("session.updated"))[-1]
        assert updated["session"]["noise_reduction"] == {"type": "near_field"}
        await client.append(speech, 24000, chunk_ms=20)
        await client.send("input_audio_buffer.commit")
        await client.until("conversation.item.input_audio_transcription.completed")
    [heard] = stt.audio
    sent = speech.size * 16000 // 24000
    assert sent <= heard.size <= sent + 16000 * 0.05, (sent, heard.size)
