"""One assistant reply as small stages: LLM -> sentence chunker -> TTS -> sender.

Stages run as sibling tasks joined by bounded queues, so TTS speaks the first sentence
while the LLM keeps generating, and a slow client (full send queue) stalls TTS, then the
LLM, instead of buffering. :meth:`Reply.cancel` cancels the stage tasks; the LLM and TTS
iterators are closed by ``aclosing`` on the way out, which cancels their Triton streams.

What the assistant "said" is what the socket actually took (``on_sent`` callbacks of
the send queue): :attr:`Reply.playback` lists each sentence with the span of output audio
it occupies, which truncation and the stored turn are cut from.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from orchestrator.errors import VoiceCannotSpeak, websocket_error_event
from orchestrator.realtime.audio import encode_output, resampled, split_quiet_end
from orchestrator.realtime.ports import LanguageModel, ReplySink, TextToSpeech
from orchestrator.realtime.protocol.item_types import FunctionCall
from orchestrator.realtime.protocol.server_events import (
    FunctionCallArgumentsDelta,
    FunctionCallArgumentsDone,
    OutputItemAdded,
    OutputItemDone,
    ResponseAudioDelta,
    ResponseAudioTranscriptDelta,
    ResponseTextDelta,
)
from orchestrator.realtime.protocol.session_types import new_id
from orchestrator.realtime.reply.clock import StageClock
from orchestrator.realtime.reply.plan import ReplyOutcome, ReplyPlan
from orchestrator.realtime.reply.playback import Playback
from orchestrator.realtime.reply.repetition import LoopGuard
from orchestrator.realtime.reply.sentences import SentenceChunker, cut_mid_clause
from orchestrator.realtime.timings import Timings
from orchestrator.speech.catalogue import LANGUAGE_NAMES, text_language

_END = object()  # end-of-stream marker between stages
AUDIO_DELTA_MS = 200  # audio is sent in pieces of at most this length
LOW_WATER_S = 1.0
"""When the client has less than this much reply audio left to play, the next chunk goes
at the next clause or word boundary instead of waiting for its sentence to end (synthesis
of a clause takes 0.2-0.5 s on a loaded CPU, so it arrives before playback runs dry)."""


@dataclass(frozen=True, slots=True)
class _Unsay:
    """Between stages: drop the last ``chars`` characters not yet spoken (a loop's repeats)."""

    chars: int


@dataclass
class Reply:
    plan: ReplyPlan
    llm: LanguageModel
    tts: TextToSpeech | None
    outbound: ReplySink
    queue_size: int = 32
    playback: Playback = field(default_factory=Playback)
    text_sent: list[str] = field(default_factory=list)
    cancel_reason: str | None = None
    _clock: StageClock = field(default_factory=StageClock)
    _stages: asyncio.Task | None = None
    _usage: tuple[int | None, int | None, int | None] = (None, None, None)
    _said: int = 0  # sentences handed to the sender
    _worded: bool = False  # text handed to the sender: the message is output item 0
    _calls_out: int = 0  # function calls handed to the sender
    _incomplete: str | None = None  # why generation ended before the model finished
    _worded_chars: int = 0  # characters of text handed to the sender
    _kept_chars: int | None = None  # a stopped loop: the text up to its first copy
    rate: int = 0
    """Sample rate of the audio sent (known from the first chunk on)."""
    warnings: list[dict[str, Any]] = field(default_factory=list)
    """``error`` objects (OpenAI shape) of what the reply could not do, e.g. a sentence
    the voice cannot say; each is also sent as an ``error`` event."""
    function_calls: list[FunctionCall] = field(default_factory=list)
    """The calls whose items reached the client (in order)."""
    mcp_calls: list[Any] = field(default_factory=list)
    """The model's calls of MCP tools (parsed calls: id, name, arguments)."""

    @property
    def outputs(self) -> int:
        """Output items this reply has sent: its message (if it said something) and calls."""
        return int(self._worded) + self._calls_out

    def cancel(self, reason: str) -> bool:
        """Stop generating; returns False when the reply has already ended."""
        if self._stages is None:  # not started: run() will end at once
            self.cancel_reason = self.cancel_reason or reason
            return True
        if self._stages.done():
            return False
        self.cancel_reason = self.cancel_reason or reason
        self._stages.cancel()
        return True

    async def run(self) -> ReplyOutcome:
        status: Literal["completed", "cancelled", "failed"] = "completed"
        error: BaseException | None = None
        self._stages = asyncio.create_task(self._run_stages())
        if self.cancel_reason is not None:
            self._stages.cancel()
        try:
            await self._stages
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                self._stages.cancel()
                raise
            status = "cancelled"
        except Exception as exc:
            status, error = "failed", exc
        if status != "completed":  # a finished reply's queued audio still goes out
            await self.outbound.drop_response(self.plan.response_id)
        return ReplyOutcome(status=status, text=self.delivered_text(),
                            audio_ms=self.playback.sent_ms, timings=self._timings(),
                            prompt_tokens=self._usage[0], completion_tokens=self._usage[1],
                            cached_tokens=self._usage[2],
                            error=error,
                            cancel_reason=self.cancel_reason if status == "cancelled" else None,
                            function_calls=list(self.function_calls),
                            incomplete_reason=self._incomplete if status == "completed"
                            else None)

    async def _run_stages(self) -> None:
        text_queue: asyncio.Queue[Any] = asyncio.Queue(self.queue_size)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._llm_stage(text_queue))
                if self.plan.audio and self.tts is not None:
                    group.create_task(self._tts_stage(text_queue))
                else:
                    group.create_task(self._drain(text_queue))
        except BaseExceptionGroup as group_error:
            # Surface the first real failure, not the group wrapper.
            raise group_error.exceptions[0] from None

    # --- stage: LLM -> text deltas ---------------------------------------------------------

    async def _llm_stage(self, out: asyncio.Queue[Any]) -> None:
        plan, clock, parser = self.plan, self._clock, self.plan.tool_parser
        clock.llm_start = time.perf_counter()
        stream = self.llm.stream(plan.messages, plan.params) if plan.prompt is None \
            else self.llm.stream(plan.messages, plan.params, plan.prompt)
        calls = []
        guard = LoopGuard() if plan.pacing.stop_loops else None
        async with aclosing(stream) as chunks:  # leaving the loop early cancels generation
            async for chunk in chunks:
                if chunk.prompt_tokens is not None or chunk.completion_tokens is not None:
                    self._usage = (chunk.prompt_tokens, chunk.completion_tokens,
                                   chunk.cached_tokens)
                if chunk.finish_reason == "length":
                    self._incomplete = "max_output_tokens"
                if not chunk.text:
                    continue
                if clock.llm_first is None:
                    clock.llm_first = time.perf_counter()
                text = chunk.text
                if parser is not None:  # words go on; a call is held until it is whole
                    text, made = parser.feed(text)
                    calls += made
                await self._words(text, out)
                if guard is not None and guard.feed(chunk.text):
                    self._incomplete = "repetition"
                    self._kept_chars = max(0, self._worded_chars - guard.repeated)
                    await out.put(_Unsay(guard.repeated))  # speak the loop's first copy only
                    break
        if parser is not None:
            rest, made = parser.finish()
            await self._words(rest, out)
            calls += made
        clock.llm_end = time.perf_counter()
        await out.put(_END)
        for call in calls:
            if call.name in plan.mcp_tools:
                self.mcp_calls.append(call)  # the responder runs it, with its own events
            else:
                await self._send_call(call)

    async def _words(self, text: str, out: asyncio.Queue[Any]) -> None:
        if not text:
            return
        plan = self.plan
        self._worded = True
        self._worded_chars += len(text)
        await self.outbound.put(
            ResponseTextDelta(response_id=plan.response_id, item_id=plan.item_id, delta=text),
            response_id=plan.response_id, on_sent=self._text_sent(text))
        await out.put(text)

    async def _send_call(self, call: Any) -> None:
        """One function-call item: added, its arguments (whole: the parser only lets a call
        out once it parses), done. It counts as made once its ``done`` has left."""
        plan = self.plan
        index = int(self._worded) + self._calls_out
        self._calls_out += 1
        item = FunctionCall(id=new_id("item"), call_id=call.id, name=call.name,
                            arguments=call.arguments)
        ids = {"response_id": plan.response_id, "item_id": item.id, "output_index": index,
               "call_id": call.id}
        started = FunctionCall(id=item.id, call_id=call.id, name=call.name, arguments="",
                               status="in_progress")
        for event in (OutputItemAdded(response_id=plan.response_id, output_index=index,
                                      item=started),
                      FunctionCallArgumentsDelta(**ids, delta=call.arguments),
                      FunctionCallArgumentsDone(**ids, name=call.name,
                                                arguments=call.arguments)):
            await self.outbound.put(event, response_id=plan.response_id)
        await self.outbound.put(
            OutputItemDone(response_id=plan.response_id, output_index=index, item=item),
            response_id=plan.response_id, on_sent=lambda: self.function_calls.append(item))

    def _text_sent(self, text: str):  # type: ignore[no-untyped-def]
        def mark() -> None:
            if self._clock.first_text_sent is None:
                self._clock.first_text_sent = time.perf_counter()
            self.text_sent.append(text)
        return mark

    async def _drain(self, source: asyncio.Queue[Any]) -> None:
        while await source.get() is not _END:
            pass

    # --- stages: sentence chunker -> TTS -> audio deltas -----------------------------------

    async def _sentences(self, source: asyncio.Queue[Any]) -> AsyncIterator[str]:
        """Chunks by sentence (the first sooner, see :class:`Pacing`); once playback would
        run dry before the sentence ends, at the next clause or word boundary instead."""
        pacing = self.plan.pacing
        chunker = SentenceChunker(first_clause_words=pacing.first_clause_words,
                                  first_chunk_max_words=pacing.first_chunk_max_words)
        while True:
            ahead = self._audio_ahead_s()
            try:
                if ahead is None or ahead <= LOW_WATER_S:
                    delta = await source.get()
                else:  # a queue get cancelled by the timeout leaves its item queued
                    # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
                    # cancel that lands as it ends, and the cancelled reply then waited
                    # forever for text (a drain that never finished, seen under load).
                    async with asyncio.timeout(ahead - LOW_WATER_S):
                        delta = await source.get()
            except TimeoutError:
                for piece in chunker.cut():
                    yield piece
                continue
            if delta is _END:
                break
            if isinstance(delta, _Unsay):
                chunker.drop_last(delta.chars)
                continue
            for sentence in chunker.feed(delta):
                yield sentence
            ahead = self._audio_ahead_s()
            if ahead is not None and ahead <= LOW_WATER_S:
                for piece in chunker.cut():
                    yield piece
        for sentence in chunker.flush():
            yield sentence

    def _audio_ahead_s(self) -> float | None:
        """Seconds of sent reply audio the client has still to play (None: none sent yet,
        or a reply collected whole, which nobody plays as it comes)."""
        return self.playback.ahead_s(time.perf_counter()) if self.plan.live else None

    async def _tts_stage(self, source: asyncio.Queue[Any]) -> None:
        assert self.tts is not None
        plan, clock = self.plan, self._clock
        async with aclosing(self._sentences(source)) as sentences:
            async for sentence in sentences:
                if clock.first_sentence is None:
                    clock.first_sentence = time.perf_counter()
                if self._unspeakable(sentence):
                    await self._send_unspoken(sentence)
                    continue
                first_piece, quiet_end = True, None
                trim_end = cut_mid_clause(sentence)
                speech = self.tts.stream(sentence, voice=plan.voice, speed=plan.speed)
                async with aclosing(speech), aclosing(
                        resampled(speech, self.rate or plan.output_rate)) as audio:
                    while True:
                        started = time.perf_counter()
                        try:
                            samples, self.rate = await anext(audio)
                        except StopAsyncIteration:
                            break
                        clock.tts_busy += time.perf_counter() - started
                        if clock.tts_first is None:
                            clock.tts_first = time.perf_counter()
                        if trim_end:
                            # The quiet end waits: sent if more audio follows, dropped if
                            # it is the end of the chunk.
                            if quiet_end is not None:
                                samples = np.concatenate([quiet_end, samples])
                            samples, quiet_end = split_quiet_end(samples, self.rate)
                        for piece in audio_pieces(samples, self.rate):
                            await self._send_audio(sentence if first_piece else None, piece)
                            first_piece = False

    def _unspeakable(self, sentence: str) -> bool:
        spoken_in = text_language(sentence)
        voice = self.plan.voice_languages
        return spoken_in is not None and voice is not None and spoken_in not in voice

    async def _send_unspoken(self, sentence: str) -> None:
        """The sentence's transcript without audio; the first time, a warning saying why."""
        plan = self.plan
        if not self.warnings:
            language = LANGUAGE_NAMES.get(text_language(sentence) or "", "this language")
            warning = websocket_error_event(VoiceCannotSpeak(
                f"voice {plan.voice or 'default'!r} cannot speak {language}: this reply's "
                f"{language} sentences are sent as transcript without audio; choose a voice "
                "that speaks it (session voice) or export one (README: Korean)",
                param="session.voice"))
            self.warnings.append(warning["error"])
            await self.outbound.put(warning)
        def mark() -> None:  # in sending order, as the spoken sentences are
            self.playback.unspoken(sentence)

        await self.outbound.put(
            ResponseAudioTranscriptDelta(response_id=plan.response_id, item_id=plan.item_id,
                                         delta=" " + sentence if self._said else sentence),
            response_id=plan.response_id, on_sent=mark)
        self._said += 1

    async def _send_audio(self, sentence: str | None, samples: Any) -> None:
        plan = self.plan
        duration_ms = len(samples) * 1000 / self.rate
        if sentence is not None:
            await self.outbound.put(
                ResponseAudioTranscriptDelta(response_id=plan.response_id, item_id=plan.item_id,
                                             delta=" " + sentence if self._said else sentence),
                response_id=plan.response_id)
            self._said += 1
        delta = base64.b64encode(encode_output(samples, plan.output_format)).decode("ascii")

        def mark() -> None:
            self.playback.sent(sentence, duration_ms)

        await self.outbound.put(
            ResponseAudioDelta(response_id=plan.response_id, item_id=plan.item_id, delta=delta),
            response_id=plan.response_id, on_sent=mark)

    # --- results ---------------------------------------------------------------------------

    def delivered_text(self, audio_end_ms: float | None = None) -> str:
        """What the user got: for audio, the sentences whose audio was sent (cut at
        ``audio_end_ms`` when given); for text, the deltas sent, less a stopped loop's
        repeats (the client has shown them; the stored turn, which later prompts read,
        keeps one copy, as a spoken reply does)."""
        if not self.plan.audio or self.tts is None:
            return "".join(self.text_sent)[:self._kept_chars].strip()
        return self.playback.text(audio_end_ms)

    def timings(self, released_at: float | None = None) -> Timings:
        """The stage timings. ``released_at``: when a speculative reply's held events
        were let out; audio produced before then counts as sent at that moment when the
        socket has not taken it yet."""
        first_voice = self._clock.tts_first
        if self.playback.started is None and first_voice is not None and \
                released_at is not None:
            self.playback.started = max(first_voice, released_at)
        return self._timings()

    def _timings(self) -> Timings:
        timings = self._clock.timings(self.plan.end_of_speech, self.playback.started)
        prompt, _, cached = self._usage
        if prompt is not None and cached is not None:
            timings.llm_cached_tokens, timings.llm_new_tokens = cached, prompt - cached
        return timings


def audio_pieces(samples: Any, rate: int):  # type: ignore[no-untyped-def]
    """``samples`` in pieces of at most :data:`AUDIO_DELTA_MS` (one audio delta each)."""
    step = max(rate * AUDIO_DELTA_MS // 1000, 1)
    for start in range(0, len(samples), step):
        yield samples[start:start + step]
