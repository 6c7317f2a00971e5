"""Words the assistant says while a slow MCP call runs, so that a caller does not sit in
silence wondering whether the line is dead (``REALTIME_MCP_FILLER_MS``).

The filler is a message item of the response that called (after its call items), spoken
by the reply's voice in the conversation's language, with OpenAI's usual message events.
It starts only once the calls have run for the set time, and once it has started it is
said to the end (the calls' answer waits for it): a phrase cut after its first word
sounds like a fault. What it said is stored as the text of the assistant turn that made
the call, as a model that speaks before it calls would have it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, TypeVar

from orchestrator.realtime.audio import encode_output, resampled
from orchestrator.realtime.ports import ReplySink, TextToSpeech
from orchestrator.realtime.protocol.item_types import Item, assistant_item
from orchestrator.realtime.protocol.outbound import ConnectionClosed, emit
from orchestrator.realtime.protocol.server_events import (
    OutputItemAdded,
    OutputItemDone,
    ResponseAudioDelta,
    ResponseAudioTranscriptDelta,
)
from orchestrator.realtime.protocol.session_types import new_id
from orchestrator.realtime.reply.stages import audio_pieces
from orchestrator.speech.catalogue import text_language

log = logging.getLogger(__name__)
T = TypeVar("T")
PHRASES = {"en": "One moment, please.", "ko": "잠시만요, 확인해 볼게요."}
"""The filler in each language the voices speak (English when the language is unknown)."""


@dataclass(frozen=True, slots=True)
class FillerVoice:
    """How the response speaks: the voice and the audio the client takes."""

    voice: str | None
    speed: float
    output_rate: int | None
    output_format: str
    voice_languages: frozenset[str] | None


def filler_phrase(said: str, voice: FillerVoice) -> str | None:
    """The filler for a conversation whose user said ``said`` last, or None when the
    voice cannot speak its language."""
    language = text_language(said)
    if language is None and voice.voice_languages is not None and \
            len(voice.voice_languages) == 1:
        (language,) = voice.voice_languages
    language = language or "en"
    if voice.voice_languages is not None and language not in voice.voice_languages:
        return None
    return PHRASES.get(language)


@dataclass(slots=True)
class Filler:
    """Speaks ``phrase`` as output item ``output_index`` of ``response_id`` if ``work``
    is still running after ``after_s``."""

    phrase: str
    voice: FillerVoice
    tts: TextToSpeech
    out: ReplySink
    response_id: str
    output_index: int
    after_s: float
    item: Item | None = None
    """The message item, once the filler began."""
    spoken: str = ""
    """What was said: the phrase once its last audio has left (a barge-in that drops it
    leaves this empty)."""

    async def around(self, work: Awaitable[T]) -> T:
        """Run ``work``; speak the filler if it takes longer than ``after_s``. Returns the
        work's result once the filler, if begun, has been said."""
        task = asyncio.ensure_future(work)
        try:
            done, _ = await asyncio.wait({task}, timeout=self.after_s)
            if not done:
                try:
                    await self._speak()
                except Exception:  # a voice that fails says nothing; the calls go on
                    log.warning("the MCP filler could not be said", exc_info=True)
                    await self._end("incomplete")
            return await task
        finally:
            if not task.done():  # cancelled from outside: the work goes with it
                task.cancel()

    async def _speak(self) -> None:
        v, item_id = self.voice, new_id("item")
        part = {"response_id": self.response_id, "item_id": item_id,
                "output_index": self.output_index}
        self.item = assistant_item(item_id, "", True, "in_progress")
        await emit(self.out, OutputItemAdded(response_id=self.response_id,
                                             output_index=self.output_index, item=self.item))
        await self._put(ResponseAudioTranscriptDelta(**part, delta=self.phrase))
        last = None
        speech = self.tts.stream(self.phrase, voice=v.voice, speed=v.speed)
        async with aclosing(speech), aclosing(resampled(speech, v.output_rate)) as audio:
            async for samples, rate in audio:
                for piece in audio_pieces(samples, rate):
                    if last is not None:
                        await self._put(last)
                    last = ResponseAudioDelta(**part, delta=base64.b64encode(encode_output(
                        piece, v.output_format)).decode("ascii"))
        if last is not None:
            await self._put(last, on_sent=self._said)
        await self._end("completed")

    async def _end(self, status: str) -> None:
        if self.item is None:
            return
        self.item = assistant_item(self.item.id, self.phrase if status == "completed" else "",
                                   True, status)
        # not dropped with the response: a client that saw the item begin sees it end
        await emit(self.out, OutputItemDone(response_id=self.response_id,
                                            output_index=self.output_index, item=self.item))

    async def _put(self, event: Any, on_sent: Callable[[], None] | None = None) -> None:
        # with the response's id: a barge-in drops what has not left
        with contextlib.suppress(ConnectionClosed):
            await self.out.put(event, response_id=self.response_id, on_sent=on_sent)

    def _said(self) -> None:
        self.spoken = self.phrase


def last_user_text(messages: list[Any]) -> str:
    """The text of the prompt's last user message ("" when there is none)."""
    for message in reversed(messages):
        role = message.get("role") if isinstance(message, dict) else \
            getattr(message, "role", None)
        if role == "user":
            content = message.get("content") if isinstance(message, dict) else \
                getattr(message, "content", "")
            return content if isinstance(content, str) else ""
    return ""
