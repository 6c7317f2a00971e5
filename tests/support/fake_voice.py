"""Small fakes of the voice ports (STT, LLM, TTS, memory) that record what was asked and
whether their streams were closed; plus espeak-ng speech for VAD tests."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from orchestrator.realtime.audio import decode_wav, encode_wav, resample
from orchestrator.realtime.ports import VoicePorts
from orchestrator.realtime.wiring import PlainPrompt


@dataclass
class FakeSegment:
    tokens: list[int]


@dataclass
class FakeTranscription:
    text: str
    language: str | None = "en"
    segments: list = field(default_factory=list)
    duration_s: float = 0.0
    model_version: str = "fake"


class FakeSTT:
    def __init__(self, text: str = "what is the weather like", fail: Exception | None = None):
        self.text, self.fail = text, fail
        self.calls: list[int] = []
        self.drafts: list[list[int]] = []

    async def transcribe(self, audio, *, language=None, prompt=None, task="transcribe",
                         temperature=0.0, version="", draft=(), recording=False):  # type: ignore[no-untyped-def]
        self.calls.append(len(audio))
        self.drafts.append(list(draft))
        await asyncio.sleep(0)
        if self.fail is not None:
            raise self.fail
        tokens = [len(word) for word in self.text.split()]  # stand-in token ids
        return FakeTranscription(self.text, duration_s=len(audio) / 16000,
                                 segments=[FakeSegment(tokens)] if tokens else [])


@dataclass
class FakeChunk:
    text: str
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None


class FakeLLM:
    """Streams ``tokens`` with ``delay`` seconds between them."""

    def __init__(self, tokens: list[str] | None = None, delay: float = 0.0,
                 finish: str = "stop"):
        self.tokens = tokens if tokens is not None else \
            ["Hello", " there", ".", " It", " is", " sunny", ".", " Bye", "!"]
        self.delay = delay
        self.finish = finish
        self.open = 0
        self.closed_early = 0
        self.produced = 0
        self.requests: list[list] = []
        self.params: list = []

    async def stream(self, messages, params) -> AsyncIterator[FakeChunk]:  # type: ignore[no-untyped-def]
        self.requests.append(list(messages))
        self.params.append(params)
        self.open += 1
        finished = False
        try:
            for token in self.tokens:
                if self.delay:
                    await asyncio.sleep(self.delay)
                self.produced += 1
                yield FakeChunk(token)
            finished = True
            yield FakeChunk("", self.finish, prompt_tokens=11,
                            completion_tokens=len(self.tokens))
        finally:
            self.open -= 1
            if not finished:
                self.closed_early += 1


@dataclass
class FakeAudioChunk:
    samples: np.ndarray
    sample_rate: int
    text: str


class FakeTTS:
    """``ms_per_char`` of a 220 Hz tone per character, at 22050 Hz, in two chunks."""

    rate = 22050

    def __init__(self, ms_per_char: float = 20.0, delay: float = 0.0):
        self.ms_per_char, self.delay = ms_per_char, delay
        self.open = 0
        self.closed_early = 0
        self.texts: list[str] = []

    async def stream(self, text, *, voice=None, speed=1.0) -> AsyncIterator[FakeAudioChunk]:  # type: ignore[no-untyped-def]
        self.texts.append(text)
        self.open += 1
        finished = False
        n = int(len(text) * self.ms_per_char * self.rate / 1000)
        tone = (0.3 * np.sin(2 * np.pi * 220 * np.arange(n) / self.rate)).astype(np.float32)
        try:
            for half in (tone[: n // 2], tone[n // 2:]):
                if self.delay:
                    await asyncio.sleep(self.delay)
                yield FakeAudioChunk(half, self.rate, text)
            finished = True
        finally:
            self.open -= 1
            if not finished:
                self.closed_early += 1


class FakeMemory:
    def __init__(self) -> None:
        self.remembered: list = []
        self.queries: list[str] = []
        self.forgotten: list[int] = []

    async def remember(self, turns) -> None:  # type: ignore[no-untyped-def]
        self.remembered.extend(turns)

    async def forget(self, turn_ids) -> None:  # type: ignore[no-untyped-def]
        self.forgotten.extend(turn_ids)

    async def recall(self, user_id, query, top_k, min_score, exclude_session_id=None):  # type: ignore[no-untyped-def]
        self.queries.append(query)
        return [FakeTranscription("the user likes rain")]


def fake_ports(stt=None, llm=None, tts=None, memory=None) -> VoicePorts:  # type: ignore[no-untyped-def]
    return VoicePorts(stt=stt or FakeSTT(), llm=llm or FakeLLM(), tts=tts, memory=memory,
                      prompt=PlainPrompt(), decode_audio=decode_wav, encode_audio=encode_wav)


def fake_services(stt=None, llm=None, tts=None, memory=None) -> dict:  # type: ignore[no-untyped-def]
    services = {"stt": stt or FakeSTT(), "llm": llm or FakeLLM(), "tts": tts or FakeTTS()}
    if memory is not None:
        services["memory"] = memory
    return services


# --- speech ----------------------------------------------------------------------------

def speak(text: str, directory: Path, rate: int = 16000) -> np.ndarray:
    """espeak-ng speech as float32 at ``rate``."""
    if shutil.which("espeak-ng") is None:
        import pytest

        pytest.skip("espeak-ng is not installed (make system-deps)")
    path = directory / f"speech_{abs(hash(text))}.wav"
    if not path.exists():
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(path), text],
                       check=True, capture_output=True)
    with wave.open(str(path)) as w:
        source_rate = w.getframerate()
        samples = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768
    return resample(samples, source_rate, rate)


def silence(seconds: float, rate: int = 16000) -> np.ndarray:
    return np.zeros(int(seconds * rate), dtype=np.float32)


TOOL_TEMPLATE = (
    "{% if tools %}[tools] {{ tools | tojson }} (answer with <tool_call>)\n{% endif %}"
    "{% for m in messages %}[{{ m.role }}] {{ m.content }}"
    "{% if m.tool_calls %}{% for c in m.tool_calls %} <tool_call>{{ c.function | tojson }}"
    "</tool_call>{% endfor %}{% endif %}"
    "{% if m.tool_call_id %} (for {{ m.tool_call_id }}){% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}[assistant]{% endif %}")


class FakeToolLLM(FakeLLM):
    """A :class:`FakeLLM` whose template offers tools (as Qwen2.5's does): the prompt it
    is sent rendered with them is kept in ``prompts``; ``replies`` are its replies in turn
    (the last one repeats)."""

    def __init__(self, replies: list[list[str]], delay: float = 0.0) -> None:
        super().__init__(replies[0], delay)
        self.replies = replies
        self.prompts: list[str | None] = []

    def tool_template(self, version: str):  # type: ignore[no-untyped-def]
        from orchestrator.chat.tools import ToolTemplate

        return ToolTemplate(TOOL_TEMPLATE, None, None, adds_bos=False)

    async def stream(self, messages, params, prompt=None) -> AsyncIterator[FakeChunk]:  # type: ignore[no-untyped-def,override]
        self.prompts.append(prompt)
        self.tokens = self.replies[min(len(self.prompts) - 1, len(self.replies) - 1)]
        async for chunk in super().stream(messages, params):
            yield chunk
