"""The conversation side of a realtime session: user turns and assistant replies.

``user_turn``: transcribe a committed turn, emit transcription events, store it, and
(server VAD) answer it. ``respond``: build the prompt, run a :class:`Reply`, store what
was actually delivered with its stage timings, write memory, emit ``response.done``.
Failures of a stage become ``error`` events for this connection only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import numpy as np

from orchestrator.errors import InvalidRequest, NotFound, websocket_error_event
from orchestrator.realtime.events import (
    ItemTruncated,
    ResponseCreated,
    ResponseDone,
    ResponseInfo,
    ResponseOptions,
    SessionConfig,
    Timings,
    TranscriptionCompleted,
    TranscriptionDelta,
    TranscriptionFailed,
    Usage,
    new_id,
)
from orchestrator.realtime.outbound import ConnectionClosed, OutboundQueue
from orchestrator.realtime.ports import VoicePorts
from orchestrator.realtime.reply import Reply, ReplyOutcome, ReplyPlan, spoken_text
from orchestrator.realtime.turns import (
    PromptContext,
    assistant_turn_row,
    prompt_messages,
    remember_later,
    user_turn_row,
)
from storage.conversations import ConversationStore, TurnRecord

log = logging.getLogger(__name__)
KEEP_ITEMS = 32  # assistant items remembered for conversation.item.truncate


def _keep_latest(items: dict, key: str, value: object) -> None:
    """Set ``items[key]``, forgetting the oldest entries beyond KEEP_ITEMS."""
    items[key] = value
    while len(items) > KEEP_ITEMS:
        items.pop(next(iter(items)))


def extension(sent: str, text: str) -> str:
    """What to append to ``sent`` (text already sent as deltas) to reach ``text``: the rest
    when ``text`` continues it word for word, else nothing."""
    if not sent:
        return text
    if text == sent or not text.startswith(sent):
        return ""
    rest = text[len(sent):]
    return rest if rest[:1].isspace() or not sent[-1:].isalnum() else ""


@dataclass(slots=True)
class _Delivered:
    turn_id: int
    reply: Reply


class Conversation:
    def __init__(self, *, user_id: str, session_id: str, ports: VoicePorts,
                 store: ConversationStore, outbound: OutboundQueue,
                 config: Callable[[], SessionConfig], history_turns: int,
                 memory_top_k: int, memory_min_score: float,
                 spawn: Callable[[Coroutine[Any, Any, None], str], asyncio.Task]) -> None:
        self.user_id, self.session_id = user_id, session_id
        self.ports, self.store, self.outbound = ports, store, outbound
        self.config = config
        self.prompt_context = PromptContext(store, session_id, user_id, history_turns,
                                            memory_top_k, memory_min_score)
        self.spawn = spawn
        self.reply: Reply | None = None
        self.response_pending = False
        self._delivered: OrderedDict[str, _Delivered] = OrderedDict()
        self._sent_partial: dict[str, str] = {}  # item id -> transcript text sent as deltas
        self._drafts: dict[str, list[int]] = {}  # item id -> the latest partial's tokens
        self._truncate_at: dict[str, float] = {}

    async def send(self, event: Any, **kwargs: Any) -> None:
        # A client that left gets nothing more; its turn is still finished and stored.
        with contextlib.suppress(ConnectionClosed):
            await self.outbound.put(event, **kwargs)

    async def send_error(self, exc: BaseException, event_id: str | None = None) -> None:
        await self.send(websocket_error_event(exc, event_id))

    # --- user turn -------------------------------------------------------------------------

    async def partial(self, item_id: str, audio: np.ndarray) -> None:
        """A partial transcript of the turn still being spoken: its stable words (all but
        the last, which the next audio may still change) go out as transcription deltas
        when they extend what was sent. Failures are quiet: the final transcript follows."""
        if self.ports.stt is None:
            return
        try:
            result = await self._transcribe(audio, self._drafts.get(item_id, []))
        except Exception as exc:
            log.info("partial transcription failed: %s", exc)
            return
        if len(result.segments) == 1:  # one window: its tokens can seed the final decode
            _keep_latest(self._drafts, item_id, list(result.segments[0].tokens))
        sent = self._sent_partial.get(item_id, "")
        delta = extension(sent, " ".join(result.text.split()[:-1]))
        if delta:
            _keep_latest(self._sent_partial, item_id, sent + delta)
            await self.send(TranscriptionDelta(item_id=item_id, delta=delta))

    def forget_partials(self, item_id: str) -> None:
        """Drop what partials of ``item_id`` sent and their draft (its audio was cleared)."""
        self._sent_partial.pop(item_id, None)
        self._drafts.pop(item_id, None)

    async def _transcribe(self, audio: np.ndarray, draft: list[int]) -> Any:
        """The session's transcription settings; ``draft``: the latest partial's tokens (a
        version that can check them in one decoder pass decodes only the rest; the
        transcript is the same either way)."""
        assert self.ports.stt is not None
        transcription = self.config().input_audio_transcription
        return await self.ports.stt.transcribe(audio, language=transcription.language,
                                               prompt=transcription.prompt, draft=draft)

    async def user_turn(self, item_id: str, audio: np.ndarray, end_of_speech: float,
                        answer: Callable[[], bool]) -> None:
        """Transcribe and store a committed turn; answer it when ``answer()`` still holds
        (no newer speech started meanwhile)."""
        config = self.config()
        assert self.ports.stt is not None
        try:
            result = await self._transcribe(audio, self._drafts.pop(item_id, []))
        except Exception as exc:
            log.warning("transcription failed: %s", exc)
            error = websocket_error_event(exc)["error"]
            await self.send(TranscriptionFailed(item_id=item_id, error=error))
            return
        stt_ms = round((time.perf_counter() - end_of_speech) * 1000, 3)
        text = result.text.strip()
        sent = self._sent_partial.pop(item_id, "")
        # Deltas add up to the final transcript when the partials were right; when a
        # partial was revised, `completed` (always the whole final text) corrects it.
        if not sent or (delta := extension(sent, text)):
            await self.send(TranscriptionDelta(item_id=item_id, delta=text if not sent
                                               else delta))
        await self.send(TranscriptionCompleted(item_id=item_id, transcript=text,
                                               language=result.language))
        if not text:
            return  # noise the VAD took for speech: nothing to store or answer
        record = await self.store.add_turn(self.session_id, user_turn_row(
            text, result.language, stt_ms, len(audio)))
        remember_later(self.ports, [record], self.spawn)
        if config.turn_detection is not None and config.turn_detection.create_response \
                and answer():
            await self.respond(None, end_of_speech=end_of_speech, stt_ms=stt_ms)

    # --- assistant reply -------------------------------------------------------------------

    async def respond(self, options: ResponseOptions | None, *,
                      end_of_speech: float | None = None, stt_ms: float | None = None) -> None:
        response_id, item_id = new_id("resp"), new_id("item")
        self.response_pending = True
        await self.send(ResponseCreated(response=ResponseInfo(id=response_id, item_id=item_id)))
        try:
            plan = await self._plan(options, response_id, item_id, end_of_speech)
            assert self.ports.llm is not None
            self.reply = Reply(plan, self.ports.llm, self.ports.tts, self.outbound)
            outcome = await self.reply.run()
            outcome.timings.stt_ms = stt_ms
            record = await self._store_reply(item_id, self.reply, outcome)
        except Exception as exc:  # prompt, memory or storage failed: this reply only
            log.exception("reply failed")
            outcome = ReplyOutcome("failed", "", 0.0, Timings(), error=exc)
            record = None
        finally:
            self.reply = None
            self.response_pending = False
        await self._done(response_id, item_id, outcome, record)

    async def _plan(self, options: ResponseOptions | None, response_id: str, item_id: str,
                    end_of_speech: float | None) -> ReplyPlan:
        config, ports = self.config(), self.ports
        options = options or ResponseOptions()
        messages = await prompt_messages(ports, self.prompt_context,
                                         instructions=options.instructions or config.instructions)
        params = ports.prompt.sampling(max_tokens=config.max_response_output_tokens,
                                       temperature=config.temperature)
        modalities = options.modalities or config.modalities
        return ReplyPlan(response_id=response_id, item_id=item_id, messages=messages,
                         params=params, audio="audio" in modalities and ports.tts is not None,
                         voice=options.voice or config.voice, speed=config.speed,
                         output_rate=config.output_sample_rate, end_of_speech=end_of_speech)

    async def _store_reply(self, item_id: str, reply: Reply,
                           outcome: ReplyOutcome) -> TurnRecord | None:
        cut = self._truncate_at.pop(item_id, None)
        text = reply.delivered_text(cut)
        if not text:
            return None  # nothing reached the user: there is no assistant turn to keep
        record = await self.store.add_turn(self.session_id, assistant_turn_row(
            text, outcome, interrupted=outcome.status != "completed" or cut is not None))
        self._delivered[item_id] = _Delivered(record.id, reply)
        while len(self._delivered) > KEEP_ITEMS:
            self._delivered.popitem(last=False)
        if (late_cut := self._truncate_at.pop(item_id, None)) is not None:
            record = await self.store.truncate_turn(record.id, reply.delivered_text(late_cut))
        remember_later(self.ports, [record], self.spawn)
        return record

    async def _done(self, response_id: str, item_id: str, outcome: ReplyOutcome,
                    record: TurnRecord | None) -> None:
        details = None
        if outcome.status == "cancelled":
            details = {"type": "cancelled", "reason": outcome.cancel_reason}
        elif outcome.status == "failed" and outcome.error is not None:
            details = {"type": "failed", "error": websocket_error_event(outcome.error)["error"]}
        usage = None
        if outcome.prompt_tokens is not None or outcome.completion_tokens is not None:
            p, c = outcome.prompt_tokens or 0, outcome.completion_tokens or 0
            usage = Usage(input_tokens=p, output_tokens=c, total_tokens=p + c)
        await self.send(ResponseDone(response=ResponseInfo(
            id=response_id, status=outcome.status, status_details=details, item_id=item_id,
            text=record.text if record else outcome.text, audio_ms=round(outcome.audio_ms, 3),
            usage=usage, timings=outcome.timings)))
        if outcome.status == "failed" and outcome.error is not None:
            await self.send_error(outcome.error)

    # --- cancellation and truncation -------------------------------------------------------

    async def cancel(self, reason: str) -> bool:
        """Cancel the reply in flight and drop its queued deltas at once."""
        reply = self.reply
        if reply is None or not reply.cancel(reason):
            return False
        await self.outbound.drop_response(reply.plan.response_id)
        return True

    async def truncate(self, item_id: str, audio_end_ms: int) -> None:
        reply = self.reply
        if reply is not None and reply.plan.item_id == item_id:
            if not reply.plan.audio:
                raise InvalidRequest(f"item {item_id!r} has no audio to truncate")
            clamped = min(float(audio_end_ms), reply.audio_sent_ms)
            self._truncate_at[item_id] = clamped
            await self.cancel("truncated")
        elif (delivered := self._delivered.get(item_id)) is not None:
            if not delivered.reply.plan.audio:
                raise InvalidRequest(f"item {item_id!r} has no audio to truncate")
            clamped = min(float(audio_end_ms), delivered.reply.audio_sent_ms)
            text = spoken_text(delivered.reply.spoken, clamped)
            await self.store.truncate_turn(delivered.turn_id, text)
        else:
            raise NotFound(f"no assistant item {item_id!r} in this connection")
        await self.send(ItemTruncated(item_id=item_id, audio_end_ms=int(clamped)))
