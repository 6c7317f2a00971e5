"""The /demo page in headless Debian Chromium: a fake microphone plays espeak speech; the
page calls over WebRTC (``POST /v1/realtime/calls``, events on ``oai-events``, the reply
on the remote track) by default, or over the WebSocket when switched to it, and shows
the conversation as bubbles with each turn's stage timings. One server and one browser
serve every test here. Services are fakes; the real-weight run is
tests/e2e/test_realtime_realweights.py.

``DEMO_SCREENSHOT_DIR=dir`` keeps the page's screenshots (desktop and phone width)."""

from __future__ import annotations

import asyncio
import os
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from bench.chromium import CHROMIUM, Page, chromium_page
from orchestrator.realtime.audio import float_to_pcm16
from orchestrator.speech.catalogue import ModelCatalogue
from tests.support.fake_voice import FakeSTT, fake_services, silence, speak
from tests.support.offered import offered_repository
from tests.support.realtime import LiveServer, live_server

pytestmark = [pytest.mark.asyncio, pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                                 "(apt-get install chromium)")]
TRANSCRIPT = "what is the weather like today"
REPLY = "Hello there. It is sunny. Bye!"  # FakeLLM's
LEAD_S, TAIL_S = 1.5, 8.0
"""Chromium loops the microphone file: silence first (the call is set up meanwhile), then
the question, then silence long enough that a test is over before it comes again."""


@dataclass
class Demo:
    live: LiveServer
    key: str
    page: Page
    speech: np.ndarray
    directory: Path

    def url(self, query: str = "", key: str | None = None) -> str:
        return f"{self.live.base_url}/demo?{query}#key={self.key if key is None else key}"

    async def open(self, query: str = "", key: str | None = None) -> None:
        """The demo page as a first-time visitor sees it (nothing kept from a test before)."""
        await self.page.command("Storage.clearDataForOrigin", origin=self.live.base_url,
                                storageTypes="local_storage")
        await self.page.open(self.url(query, key))

    def calls(self) -> dict:
        registry = self.live.runtime.transports.get("webrtc")
        return {} if registry is None else registry.calls


@pytest.fixture(scope="module")
async def demo(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Demo]:
    directory = tmp_path_factory.mktemp("demo")
    speech = speak("Hello, what is the weather like today", directory, rate=48000)
    microphone = directory / "microphone.wav"
    with wave.open(str(microphone), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes(float_to_pcm16(np.concatenate([silence(LEAD_S, 48000), speech,
                                                     silence(TAIL_S, 48000)])))
    async with live_server(directory, auth_mode="required") as live:
        # Two served voices (joe: English, kss: Korean) for the voice picker.
        live.use({"catalogue": ModelCatalogue(offered_repository(directory / "repository"))})
        key = (await live.runtime.keys.create("browser-user")).secret
        async with chromium_page("about:blank", microphone, directory / "profile") as page:
            yield Demo(live, key, page, speech, directory)


def screenshot_dir(demo: Demo) -> Path:
    directory = Path(os.environ.get("DEMO_SCREENSHOT_DIR") or demo.directory)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


TURNS = """({
  user: [...document.querySelectorAll('.turn.user .bubble')].map((b) => b.textContent),
  assistant: [...document.querySelectorAll('.turn.assistant .bubble')].map((b) => b.textContent),
  timings: [...document.querySelectorAll('.timings')].map((t) => t.innerText),
  bars: [...document.querySelectorAll('.timings .bar')].map((b) => [b.dataset.stage,
          parseFloat(b.firstChild.style.width)]),
  badge: document.getElementById('transport-badge').textContent,
  error: document.getElementById('error').innerText,
  voices: [...document.getElementById('voice').options].map((o) => o.value),
})"""


def assert_heard_here(state: dict, turns: dict) -> None:
    """The page timed the turn itself, from the question's last sound to the reply's first
    on its own audio clock: after the server sent the reply's first audio (from the same
    end of speech, less what the server's VAD lags), and not from the question's start
    (about two seconds earlier)."""
    heard, server = state["heard"][0], state["timings"][0]["voice_to_voice_ms"]
    assert len(state["heard"]) == 1
    assert server - 100 < heard < server + 1000, (heard, server)
    assert f"heard here after\n{round(heard)} ms" in turns["timings"][0]


async def test_a_spoken_turn_over_webrtc_shows_bubbles_and_timing_bars(demo: Demo) -> None:
    stt = FakeSTT(TRANSCRIPT)
    demo.live.use(fake_services(stt=stt))
    page = demo.page
    await demo.open("autostart=1")
    calls_seen: set[str] = set()
    state: dict = {}
    shots = screenshot_dir(demo)
    speaking_shot = None
    for _ in range(300):
        calls_seen.update(demo.calls())
        state = await page.evaluate("window.demoState")
        if state["phase"] == "assistant" and speaking_shot is None:
            speaking_shot = await page.screenshot(shots / "demo-webrtc-speaking.png")
        if state["timings"] and state["assistantTexts"] and state["phase"] == "listening":
            break
        await asyncio.sleep(0.1)
    turns = await page.evaluate(TURNS)
    await page.screenshot(shots / "demo-webrtc.png")
    await page.screenshot(shots / "demo-webrtc-phone.png", width=390, height=844, mobile=True)

    assert state["errors"] == [] and turns["error"] == ""
    # It went over WebRTC: the server's call registry held the page's call.
    assert turns["badge"] == "WebRTC" and state["callId"] in calls_seen
    assert state["events"][:2] == ["session.created", "session.updated"]
    for kind in ("input_audio_buffer.speech_started", "output_audio_buffer.started",
                 "output_audio_buffer.stopped", "response.done"):
        assert kind in state["events"], state["events"]
    assert state["audioDeltas"] == 0  # the reply played on the remote track, not as deltas
    # The state pill went through the turn (each state in this order, others between).
    order = iter(state["phases"])
    assert all(phase in order for phase in ("connecting", "listening", "user", "thinking",
                                            "assistant", "listening")), state["phases"]
    # The meters moved: the fake microphone's speech, then the reply (FakeTTS's tone) from
    # the remote track.
    assert state["micLevel"] > 0.05 and state["replyLevel"] > 0.05
    # The user's bubble has what STT heard (interim words first), the assistant's the reply.
    assert turns["user"][0] == TRANSCRIPT == state["userTranscripts"][0]
    assert state["interim"] and TRANSCRIPT.startswith(state["interim"][0])
    assert turns["assistant"][0] == REPLY
    # One timing bar block for the turn, with the server's numbers; bars are on the scale
    # of the turn's longest stage.
    timings = state["timings"][0]
    assert timings["voice_to_voice_ms"] > 0
    assert len(turns["timings"]) >= 1
    assert f"voice to voice\n{round(timings['voice_to_voice_ms'])} ms" in turns["timings"][0]
    stages = dict(turns["bars"][:5])
    assert {"voice_to_voice_ms", "stt_ms", "llm_first_token_ms"} <= set(stages)
    assert max(stages.values()) == 100.0 and all(0 < w <= 100 for w in stages.values())
    assert_heard_here(state, turns)
    # The voice picker lists the served voices.
    assert turns["voices"] == ["", "joe", "kss"]

    # Korean, picked during the call: a Korean voice is chosen with it and both apply at
    # once (session.update on the data channel).
    await page.evaluate("""(() => { const l = document.getElementById('language');
        l.value = 'ko'; l.dispatchEvent(new Event('change')); })()""")
    session = await page.wait_for("""(s => s && s.audio.input.transcription.language === 'ko'
                                   && s)(window.demoState.session)""", 10)
    assert session and session["audio"]["output"]["voice"] == "kss"
    assert await page.evaluate("document.getElementById('voice').value") == "kss"

    # Hang up: the page posts the call's hang-up URL and the server ends it.
    await page.evaluate("document.getElementById('hangup').click()")
    assert await page.wait_for("window.demoState.phase === 'ended'", 10)
    for _ in range(50):
        if state["callId"] not in demo.calls():
            break
        await asyncio.sleep(0.1)
    assert state["callId"] not in demo.calls()
    # Start again: a new call goes on with the same conversation.
    first_session = state["session"]["id"]
    await page.evaluate("document.getElementById('start').click()")
    assert await page.wait_for("window.demoState.phase === 'listening'", 20)
    again = await page.evaluate("window.demoState")
    assert again["callId"] != state["callId"] and again["session"]["id"] == first_session
    await page.evaluate("document.getElementById('hangup').click()")
    assert await page.wait_for("window.demoState.phase === 'ended'", 10)


async def test_the_websocket_switch_talks_and_plays_the_reply(demo: Demo) -> None:
    stt = FakeSTT(TRANSCRIPT)
    demo.live.use(fake_services(stt=stt))
    session_id = await demo.live.new_session("browser-user")
    # The key rides in the fragment; the page sends it as the WebSocket subprotocol.
    await demo.open(f"transport=websocket&session={session_id}&autostart=1")
    state = await demo.page.wait_for(
        "(s => s.responses.includes('completed') && s.audioDeltas && s.timings.length"
        " && s.replyLevel > 0.05 && s.heard.length && s)"
        "(window.demoState)", 60)
    turns = await demo.page.evaluate(TURNS)
    stored, _ = await demo.live.runtime.conversations.list_turns(session_id)
    await demo.page.evaluate("document.getElementById('hangup').click()")
    assert state["errors"] == [] and turns["badge"] == "WebSocket"
    assert state["micLevel"] > 0.05 and state["replyLevel"] > 0.05
    assert state["transport"] == "websocket" and state["callId"] is None
    assert state["events"][:2] == ["session.created", "session.updated"]
    assert "input_audio_buffer.speech_started" in state["events"]
    assert state["userTranscripts"][0] == TRANSCRIPT == turns["user"][0]
    assert turns["assistant"][0] == REPLY
    # Interim words were shown while the user spoke (then replaced by the final text).
    assert state["interim"] and TRANSCRIPT.startswith(state["interim"][-1].strip())
    timings = state["timings"][0]
    assert timings["voice_to_voice_ms"] > 0 and timings["stt_ms"] >= 0
    assert f"voice to voice\n{round(timings['voice_to_voice_ms'])} ms" in turns["timings"][0]
    assert "first token" in turns["timings"][0] and "first audio" in turns["timings"][0]
    assert_heard_here(state, turns)
    # The browser's captured speech reached STT as one turn of about its length.
    # the last call is the final transcription of the whole turn (earlier: partials)
    seconds = len(demo.speech) / 48000
    assert seconds - 0.5 < stt.calls[-1] / 16000 < seconds + 1.5
    assert [t.role for t in stored[:2]] == ["user", "assistant"]


async def test_a_wrong_key_says_so_and_starts_no_call(demo: Demo) -> None:
    demo.live.use(fake_services())
    await demo.open("autostart=1", key="vck_not-a-real-key")
    notice = await demo.page.wait_for("window.demoState.notice", 20)
    state = await demo.page.evaluate("window.demoState")
    shown = await demo.page.evaluate("document.getElementById('error').innerText")
    assert notice and "The API key was not accepted (401)." in shown
    assert "Check the key" in shown
    assert state["phase"] == "error" and state["callId"] is None and not demo.calls()
    await demo.page.screenshot(screenshot_dir(demo) / "demo-wrong-key.png", width=390,
                               height=700, mobile=True)


async def test_refusals_and_a_dropped_call_are_explained(demo: Demo) -> None:
    page = demo.page
    # The server refuses the call (speech-to-text is off): its 503 message is shown.
    demo.live.use({"stt": None})
    try:
        await demo.open("autostart=1")
        assert await page.wait_for("window.demoState.notice", 20)
        shown = await page.evaluate("document.getElementById('error').innerText")
    finally:
        demo.live.use(fake_services())
    assert "The service is unavailable (503)." in shown and "The server says:" in shown
    assert not demo.calls()

    # A Korean session (continued with ?session=): the language picker follows it. Then
    # the call drops (the server ends it): the page says so and can call again.
    session_id = await demo.live.new_session("browser-user", language="ko")
    await demo.open(f"session={session_id}&autostart=1")
    assert await page.wait_for("window.demoState.phase === 'listening'", 20)
    assert await page.evaluate("document.getElementById('language').value") == "ko"
    session = await page.evaluate("window.demoState.session")
    assert session["id"] == session_id
    assert session["audio"]["input"]["transcription"]["language"] == "ko"
    call_id = await page.evaluate("window.demoState.callId")
    await demo.calls()[call_id].end()
    assert await page.wait_for("window.demoState.notice", 20)
    shown = await page.evaluate("document.getElementById('error').innerText")
    assert "The call dropped." in shown
    assert await page.evaluate("window.demoState.phase") == "error"
    assert not await page.evaluate("document.getElementById('start').disabled")

    # The microphone is refused: the page says how to allow it, and posts nothing. (The
    # browser runs with --use-fake-ui-for-media-stream, which grants every request, so the
    # refusal is getUserMedia's NotAllowedError, as a browser rejects it with.)
    await demo.open()
    await page.evaluate("""navigator.mediaDevices.getUserMedia = () => Promise.reject(
        new DOMException('Permission denied', 'NotAllowedError'));
        document.getElementById('start').click()""")
    assert await page.wait_for("window.demoState.notice", 20)
    shown = await page.evaluate("document.getElementById('error').innerText")
    assert "Microphone access was refused." in shown
    assert "Allow the microphone" in shown
    assert await page.evaluate("window.demoState.callId") is None


async def test_the_browser_bench_times_both_transports_from_the_page(demo: Demo) -> None:
    """`voicechat bench browser`: one question, a call on each transport, each timed by
    the page itself and set against the server's figures."""
    from bench.browser import measure

    demo.live.use(fake_services(stt=FakeSTT(TRANSCRIPT)))
    turns = await measure(demo.live.base_url, [float_to_pcm16(demo.speech)], 48000,
                          ("webrtc", "websocket"), rounds=1, key=demo.key, temperature=0.0,
                          wait_s=60, language="en")
    for transport in ("webrtc", "websocket"):
        (turn,) = turns[transport]
        assert turn["status"] == "completed" and turn["transcript"] == TRANSCRIPT, turn
        assert turn["reply"] == REPLY and turn["question"] == 0
        # What the transport added on the way in and out: what the page heard less what
        # the server measured, from the same end of speech.
        assert turn["transport_ms"] == turn["client_heard_ms"] - turn["voice_to_voice_ms"]
        assert -100 < turn["transport_ms"] < 1000
    # The call's own statistics came from the browser: its jitter buffer held the reply.
    assert turns["webrtc"][0]["jitter_buffer_ms"] > 0
    assert "jitter_buffer_ms" not in turns["websocket"][0]
