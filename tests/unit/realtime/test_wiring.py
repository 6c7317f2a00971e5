"""The adapters the lead points at the chat and speech features at merge."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from orchestrator.realtime.wiring import ChatPrompt, PlainPrompt, bounded_decoder, voice_ports
from orchestrator.services import Services


def test_chat_prompt_passes_the_chat_builders_keywords() -> None:
    seen = {}

    def build_messages(**kwargs):  # type: ignore[no-untyped-def]
        seen.update(kwargs)
        return ["m"]

    prompt = ChatPrompt(build_messages, lambda **kw: kw, len, 2048)
    assert prompt.messages(instructions="be nice", history=[], memories=["rain"],
                           user_text="hi", truncated=True, cursor="c") == ["m"]
    assert seen == {"instructions": "be nice", "turns": [], "user_text": "hi",
                    "count_tokens": len, "budget_tokens": 2048, "memories": ["rain"],
                    "truncated": True, "cursor": "c"}
    assert prompt.sampling(max_tokens=5, temperature=0.1) == {"max_tokens": 5,
                                                              "temperature": 0.1}


def test_bounded_decoder_forwards_limits() -> None:
    calls = []

    def decode_audio(data, *, max_bytes, max_seconds):  # type: ignore[no-untyped-def]
        calls.append((data, max_bytes, max_seconds))
        return np.zeros(3, np.float32)

    assert len(bounded_decoder(decode_audio, max_bytes=9, max_seconds=2.0)(b"x", "wav")) == 3
    assert calls == [(b"x", 9, 2.0)]


def test_voice_ports_default_to_plain_prompt_and_wav_codec() -> None:
    runtime = SimpleNamespace(services=Services(stt=1, llm=2), settings=None)
    ports = voice_ports(runtime)
    assert (ports.stt, ports.llm, ports.tts, ports.memory) == (1, 2, None, None)
    assert isinstance(ports.prompt, PlainPrompt)
