"""The speech-to-text stage of a realtime session: a committed turn in, its transcript
out (events, the stored user turn), then handed on to the :class:`~.responder.Responder`.

Partial transcripts of the turn still being spoken go out as transcription deltas; the
final transcript's delta extends them when they were right, and ``completed`` (always
the whole text) corrects them when a partial was revised.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from orchestrator.errors import websocket_error_event
from orchestrator.realtime.items import ConversationItems, keep_latest
from orchestrator.realtime.ports import ReplySink, VoicePorts
from orchestrator.realtime.protocol.item_types import user_audio_item
from orchestrator.realtime.protocol.outbound import OutboundQueue, emit
from orchestrator.realtime.protocol.server_events import (
    TranscriptionCompleted,
    TranscriptionDelta,
    TranscriptionFailed,
    TranscriptionUsage,
)
from orchestrator.realtime.protocol.session_types import SessionConfig
from orchestrator.realtime.reply.stored import remember_later, user_turn_row
from orchestrator.realtime.responder import Responder
from orchestrator.realtime.transcription import answers_turns
from orchestrator.realtime.turns.speculation import HeldSink
from orchestrator.speech.audio_format import MODEL_RATE
from orchestrator.telemetry.tracing import traced
from storage.conversations import ConversationStore, TurnRecord

log = logging.getLogger(__name__)


def extension(sent: str, text: str) -> str:
    """What to append to ``sent`` (text already sent as deltas) to reach ``text``: the rest
    when ``text`` continues it word for word, else nothing."""
    if not sent:
        return text
    if text == sent or not text.startswith(sent):
        return ""
    rest = text[len(sent):]
    return rest if rest[:1].isspace() or not sent[-1:].isalnum() else ""


class UserTurns:
    def __init__(self, *, session_id: str, ports: VoicePorts, store: ConversationStore,
                 outbound: OutboundQueue, items: ConversationItems, responder: Responder,
                 config: Callable[[], SessionConfig]) -> None:
        self.session_id = session_id
        self.ports, self.store, self.outbound = ports, store, outbound
        self.items, self.responder, self.config = items, responder, config
        self._sent_partial: dict[str, str] = {}  # item id -> transcript text sent as deltas
        self._drafts: dict[str, list[int]] = {}  # item id -> the latest partial's tokens
        self._heard: dict[str, int] = {}  # item id -> samples the latest partial transcribed

    async def partial(self, item_id: str, audio: np.ndarray) -> str | None:
        """A partial transcript of the turn still being spoken: its stable words (all but
        the last, which the next audio may still change) go out as transcription deltas
        when they extend what was sent. Failures are quiet: the final transcript follows.
        Returns the partial transcript (None: none)."""
        if self.ports.stt is None:
            return None
        try:
            result = await self._transcribe(audio, self._drafts.get(item_id, []))
        except Exception as exc:
            log.info("partial transcription failed: %s", exc)
            return None
        keep_latest(self._heard, item_id, len(audio))
        if len(result.segments) == 1:  # one window: its tokens can seed the final decode
            keep_latest(self._drafts, item_id, list(result.segments[0].tokens))
        sent = self._sent_partial.get(item_id, "")
        delta = extension(sent, " ".join(result.text.split()[:-1]))
        if delta:
            keep_latest(self._sent_partial, item_id, sent + delta)
            await emit(self.outbound, TranscriptionDelta(item_id=item_id, delta=delta))
        return result.text

    def forget_partials(self, item_id: str) -> None:
        """Drop what partials of ``item_id`` sent and their draft (its audio was cleared)."""
        self._sent_partial.pop(item_id, None)
        self._drafts.pop(item_id, None)
        self._heard.pop(item_id, None)

    async def _transcribe(self, audio: np.ndarray, draft: list[int]) -> Any:
        """The session's transcription settings; ``draft``: the latest partial's tokens (a
        version that can check them in one decoder pass decodes only the rest; the
        transcript is the same either way)."""
        assert self.ports.stt is not None
        transcription = self.config().input_audio_transcription
        return await self.ports.stt.transcribe(audio, language=transcription.language,
                                               prompt=transcription.prompt, draft=draft)

    async def transcribe_interruption(self, audio: np.ndarray) -> Any:
        """Transcribe speech heard during a reply, to tell a backchannel from a turn."""
        return await self._transcribe(audio, [])

    async def user_turn(self, item_id: str, audio: np.ndarray, end_of_speech: float,
                        answer: Callable[[], bool], *, held: HeldSink | None = None,
                        transcription: Any = None,
                        turn_detection_ms: Callable[[], float | None] | None = None) -> None:
        """Transcribe and store a committed turn; answer it when ``answer()`` still holds
        (no newer speech started meanwhile).

        ``held``: a speculative turn. Its events wait in the sink and its rows wait for
        ``held.confirmed``; until then cancelling the task leaves no trace.
        ``transcription``: the turn was already transcribed (a barge-in check)."""
        with traced("realtime.turn", {"voicechat.session_id": self.session_id,
                                      "voicechat.item_id": item_id,
                                      "voicechat.speculative": held is not None,
                                      "voicechat.audio_ms":
                                          round(len(audio) * 1000 / MODEL_RATE, 3)}):
            out: ReplySink = held if held is not None else self.outbound
            config = self.config()
            assert self.ports.stt is not None
            started = time.perf_counter()
            try:
                with traced("stt"):
                    result = transcription or await self._transcribe(
                        audio, self._drafts.get(item_id, []))
            except Exception as exc:
                log.warning("transcription failed: %s", exc)
                error = websocket_error_event(exc)["error"]
                await _confirmed(held)
                self.forget_partials(item_id)
                await emit(out, TranscriptionFailed(item_id=item_id, error=error))
                return
            stt_ms = round((time.perf_counter() - started) * 1000, 3)
            heard = self._heard.get(item_id) if transcription is None else None
            # The stretch of the turn no partial had transcribed: what the final pass was
            # the first to hear (its draft covered the rest).
            stt_tail_ms = round(max(len(audio) - heard, 0) * 1000 / MODEL_RATE, 3) \
                if heard else None
            text = result.text.strip()
            if held is not None:  # turn taking reads it as a second opinion
                held.transcript = (text, result.language)
            sent = self._sent_partial.get(item_id, "")
            # Deltas add up to the final transcript when the partials were right; when a
            # partial was revised, `completed` (always the whole final text) corrects it.
            if not sent or (delta := extension(sent, text)):
                await emit(out, TranscriptionDelta(item_id=item_id,
                                                   delta=text if not sent else delta))
            await emit(out, TranscriptionCompleted(
                item_id=item_id, transcript=text, language=result.language,
                usage=TranscriptionUsage(seconds=round(len(audio) / MODEL_RATE, 3))))
            if not text:  # noise the VAD took for speech: nothing to store or answer
                await _confirmed(held)
                self.forget_partials(item_id)
                return
            prompt_read = asyncio.Event()  # the reply read the history: the user row may follow

            async def store_user_turn() -> TurnRecord:
                await _confirmed(held)
                await prompt_read.wait()
                self.forget_partials(item_id)
                record = await self.store.add_turn(self.session_id, user_turn_row(
                    text, result.language, stt_ms, len(audio)))
                self.items.keep(record.id, user_audio_item(item_id, text))
                remember_later(self.ports, [record], self.items.spawn,
                               after=self.responder.quiet.wait)
                return record

            stored = asyncio.ensure_future(store_user_turn())
            try:
                if answers_turns(config) and answer():
                    await self.responder.respond(
                        None, end_of_speech=end_of_speech, stt_ms=stt_ms,
                        stt_tail_ms=stt_tail_ms,
                        turn_detection_ms=turn_detection_ms, out=out, user_text=text,
                        user_stored=stored, prompt_read=prompt_read)
                prompt_read.set()
                await stored
            finally:
                stored.cancel()


async def _confirmed(held: HeldSink | None) -> None:
    if held is not None:
        await held.confirmed.wait()
