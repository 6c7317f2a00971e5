"""The /demo page in headless Debian Chromium: a fake microphone plays espeak speech, the
page streams it over the WebSocket, shows the transcript and plays the reply audio.
Services are fakes here; the real-weight run is tests/e2e/test_realtime_realweights.py."""

from __future__ import annotations

import asyncio
import wave

import numpy as np
import pytest

from orchestrator.realtime.audio import float_to_pcm16
from tests.support.chromium import CHROMIUM, chromium_page
from tests.support.fake_voice import FakeSTT, fake_services, silence, speak
from tests.support.realtime import live_server

pytestmark = [pytest.mark.asyncio, pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                                 "(apt-get install chromium)")]


async def test_demo_page_talks_and_plays_the_reply(tmp_path) -> None:
    speech = speak("Hello, what is the weather like today", tmp_path, rate=48000)
    microphone = tmp_path / "microphone.wav"
    with wave.open(str(microphone), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes(float_to_pcm16(np.concatenate([silence(0.5, 48000), speech,
                                                     silence(3.0, 48000)])))
    stt = FakeSTT("what is the weather like today")
    async with live_server(tmp_path, auth_mode="required") as live:
        live.use(fake_services(stt=stt))
        key = (await live.runtime.keys.create("browser-user")).secret
        session_id = await live.new_session("browser-user")
        # The key rides in the fragment; the page sends it as the WebSocket subprotocol.
        url = (f"{live.base_url}/demo?user=browser-user&session={session_id}&autostart=1"
               f"#key={key}")
        async with chromium_page(url, microphone, tmp_path / "profile") as page:
            state = {}
            for _ in range(600):
                state = await page.evaluate("window.demoState")
                if state and "completed" in state["responses"] and state["audioDeltas"]:
                    break
                await asyncio.sleep(0.1)
            log = await page.evaluate("document.getElementById('log').innerText")
        turns, _ = await live.runtime.conversations.list_turns(session_id)
    assert state["errors"] == []
    assert state["events"][:2] == ["session.created", "session.updated"]
    assert "input_audio_buffer.speech_started" in state["events"]
    assert state["userTranscripts"][0] == "what is the weather like today"
    assert state["audioDeltas"] > 0 and "completed" in state["responses"]
    assert "You: what is the weather like today" in log
    assert "Assistant: Hello there. It is sunny. Bye!" in log
    # Interim words were shown while the user spoke (then replaced by the final line).
    assert state["interim"] and state["interim"][-1].startswith("You: what is the weather")
    # Per turn, the page shows the server's stage timings.
    timings = state["timings"][0]
    assert timings["voice_to_voice_ms"] > 0 and timings["stt_ms"] >= 0
    assert f"voice to voice {round(timings['voice_to_voice_ms'])} ms" in log
    assert "first token" in log and "first audio" in log
    # The browser's captured speech reached STT as one turn of about its length.
    # the last call is the final transcription of the whole turn (earlier: partials)
    assert len(speech) / 48000 - 0.5 < stt.calls[-1] / 16000 < len(speech) / 48000 + 1.5
    assert [t.role for t in turns[:2]] == ["user", "assistant"]
