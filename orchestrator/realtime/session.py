"""One realtime connection: the stages of the pipeline wired together.

::

    client events ──> RealtimeSession._dispatch ──> items / responder / turn taker
    audio ──> Denoiser (noise_reduction on) ──> TurnTaker ──frames──> UserTurns (STT)
          ──> Responder (Reply) ──> outbound

The session decodes what the transport hands it, routes each client event and each
turn frame to the stage it concerns, and owns the task chain (:mod:`.tasks`): turns and
replies run one after another, every task is tracked so closing leaks nothing. The
stages never call back into the session.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from orchestrator.errors import AppError, InvalidRequest, ShuttingDown, websocket_error_event
from orchestrator.realtime.audio import decode_base64_audio, decode_input
from orchestrator.realtime.config import (
    changes_of,
    check_offered,
    default_server_vad,
    initial_config,
    stored_changes,
)
from orchestrator.realtime.idle import IdleTimeout
from orchestrator.realtime.items import ConversationItems
from orchestrator.realtime.mcp import McpServers, check_mcp
from orchestrator.realtime.ports import VoicePorts
from orchestrator.realtime.protocol.client_events import (
    AudioAppend,
    AudioClear,
    AudioCommit,
    ItemCreate,
    ItemDelete,
    ItemRetrieve,
    ItemTruncate,
    NewMcpApprovalResponse,
    OutputAudioClear,
    ResponseCancel,
    ResponseCreate,
    SessionUpdateEvent,
)
from orchestrator.realtime.protocol.decode import decode_client_event, event_id_of
from orchestrator.realtime.protocol.outbound import OutboundQueue, emit
from orchestrator.realtime.protocol.server_events import (
    AudioCleared,
    AudioCommitted,
    OutputAudioCleared,
    SessionCreated,
    SessionUpdated,
    SpeechStarted,
    SpeechStopped,
    TranscriptionCompleted,
)
from orchestrator.realtime.protocol.session_types import SemanticVad
from orchestrator.realtime.reply.plan import Pacing
from orchestrator.realtime.reply.stored import PromptContext
from orchestrator.realtime.responder import Responder
from orchestrator.realtime.tasks import SessionTasks
from orchestrator.realtime.transcription import answers_turns, check_update
from orchestrator.realtime.turns import frames
from orchestrator.realtime.turns.backchannel import is_backchannel
from orchestrator.realtime.turns.denoise import Denoiser, load_denoiser
from orchestrator.realtime.turns.smart_turn import SmartTurnModel
from orchestrator.realtime.turns.smart_turn import load_model as load_smart_turn
from orchestrator.realtime.turns.speculation import HeldSink, Speculation
from orchestrator.realtime.turns.taker import TurnTaker
from orchestrator.realtime.turns.vad import SileroModel, SpeechStop
from orchestrator.realtime.user_turns import UserTurns
from orchestrator.settings import Settings
from storage.conversations import ConversationStore, SessionRecord

log = logging.getLogger(__name__)
CLOSE_GRACE_S = 5.0  # how long a closing connection lets its last turn finish storing


class RealtimeSession:
    def __init__(self, record: SessionRecord, *, settings: Settings, ports: VoicePorts,
                 store: ConversationStore, outbound: OutboundQueue, vad: SileroModel,
                 audio_meter: Callable[[float], Awaitable[object]] | None = None,
                 smart_turn: Callable[[], SmartTurnModel] | None = None,
                 decode_event: Callable[[str], Any] | None = None,
                 llm_version: str = "") -> None:
        self.record, self.settings, self.store, self.outbound = record, settings, store, outbound
        self.ports = ports
        self.audio_meter = audio_meter
        """Charged each chunk's seconds; raises RateLimited over the key's allowance."""
        self.decode_event = decode_event or decode_client_event
        """Text frame -> client event (``/v1/realtime`` decodes OpenAI's GA or beta shapes)."""
        self.config = initial_config(record, settings, ports.tts is not None,
                                     ports.llm is not None)
        self.tasks = SessionTasks(record.id)
        self.items = ConversationItems(record.id, store=store, ports=ports,
                                       spawn=self.tasks.spawn)
        self.mcp = McpServers()
        self.responder = Responder(
            session_id=record.id, ports=ports, store=store, outbound=outbound,
            items=self.items, config=lambda: self.config,
            prompt_context=PromptContext(store, record.id, record.user_id,
                                         settings.realtime_history_turns,
                                         settings.memory_top_k, settings.memory_min_score),
            pacing=Pacing.from_settings(settings), llm_version=llm_version,
            reply_sent=lambda: self.idle.reply_sent(), mcp=self.mcp,
            mcp_filler_s=settings.realtime_mcp_filler_ms / 1000)
        self.user_turns = UserTurns(session_id=record.id, ports=ports, store=store,
                                    outbound=outbound, items=self.items,
                                    responder=self.responder, config=lambda: self.config)
        self.taker = TurnTaker(self.config, settings=settings, vad=vad,
                               smart_turn=smart_turn or (
                                   lambda: load_smart_turn(settings.smart_turn_model_path)),
                               transcribes=ports.stt is not None)
        self.idle = IdleTimeout(config=lambda: self.config, taker=self.taker,
                                responder=self.responder, tasks=self.tasks, outbound=outbound)
        self._settling = False
        self.denoiser: Denoiser | None = None
        """``noise_reduction``: the input audio's denoiser, before the turn taker."""

    @property
    def input_rate(self) -> int:
        """The rate input audio arrives at (G.711 is 8 kHz whatever the PCM rate says)."""
        return self.taker.input_rate

    async def send(self, event: Any) -> None:
        await emit(self.outbound, event)

    async def send_error(self, exc: BaseException, event_id: str | None = None) -> None:
        await self.send(websocket_error_event(exc, event_id))

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        problem = None
        if isinstance(self.config.turn_detection, SemanticVad):
            try:
                await self.taker.ensure_smart_turn()
            except InvalidRequest as exc:  # no turn model: fall back to silence, say so
                problem = exc
                self.config = msgspec.structs.replace(
                    self.config, turn_detection=default_server_vad(self.settings))
        self.taker.start(self.config)
        await self.send(SessionCreated(session=self.config))
        if problem is not None:
            await self.send_error(problem)

    async def close(self) -> None:
        """Cancel the reply in flight, let the last turn store what was said, then cancel
        every remaining task and wait for it (no task or stream outlives the socket)."""
        self.tasks.closing = True
        self.idle.reset()
        self.taker.drop_speculation()
        await self.responder.cancel("disconnect")
        await self.tasks.wait_chain(CLOSE_GRACE_S)
        await self.tasks.cancel_all()
        if self.denoiser is not None:
            self.denoiser.close()

    async def settle(self, timeout_s: float) -> None:
        """The server is shutting down: take no new turn, drop a speculative one (its user
        had not finished), and wait up to ``timeout_s`` for the turn in flight: its reply
        and stored rows."""
        self._settling = True
        self.taker.drop_speculation()
        deadline = time.monotonic() + timeout_s
        while self.tasks.chain_busy:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            await self.tasks.wait_chain(remaining)

    # --- client events ---------------------------------------------------------------------

    async def handle_text(self, text: str) -> None:
        """One JSON event; any problem becomes an ``error`` event and the socket stays up."""
        event_id = None
        try:
            event = self.decode_event(text)
            event_id = event.event_id
            await self._dispatch(event)
        except AppError as exc:
            await self.send_error(exc, event_id or event_id_of(text))
        except Exception as exc:
            log.exception("realtime event failed")
            await self.send_error(exc, event_id)

    async def handle_bytes(self, data: bytes) -> None:
        """A binary frame: PCM16 audio, as ``input_audio_buffer.append``."""
        try:
            await self._audio(data)
        except AppError as exc:
            await self.send_error(exc)

    async def _dispatch(self, event: Any) -> None:
        if self._settling and isinstance(event, AudioCommit | ResponseCreate | ItemCreate):
            raise ShuttingDown("the server is shutting down: this session takes no new turn "
                               "here; reconnect to continue it")
        if isinstance(event, AudioCommit | ResponseCreate | ItemCreate):
            self.idle.reset()  # a turn or a response starts: the user is not idle
        match event:
            case AudioAppend(audio=audio):
                await self._audio(decode_base64_audio(audio))
            case SessionUpdateEvent(session=update):
                await self._update(update)
            case AudioCommit():
                if self.denoiser is not None:  # the turn's last 30-40 ms are in the model
                    tail = await asyncio.to_thread(self.denoiser.flush, self.input_rate)
                    await self._turn(self.taker.feed(tail, self._speaking))
                await self._turn(self.taker.commit_now(self._speaking))
            case AudioClear():
                self._clear()
                await self.send(AudioCleared())
            case ResponseCreate(response=options):
                self.responder.accept(options)
                self.tasks.enqueue(lambda: self.responder.respond(options), "response")
            case ResponseCancel():
                if not await self.responder.cancel("client_cancelled"):
                    raise InvalidRequest("no response in progress to cancel")
            case ItemTruncate(item_id=item_id, audio_end_ms=audio_end_ms):
                if not await self.responder.truncate(item_id, audio_end_ms):
                    await self.send(await self.items.truncate(item_id, float(audio_end_ms)))
            case ItemCreate(item=NewMcpApprovalResponse() as answer):
                await self.send(self.mcp.answer(answer))
                if answer.approve:  # the call runs in a response of its own
                    self.tasks.enqueue(lambda: self.responder.run_approved(
                        answer.approval_request_id), "mcp call")
            case ItemCreate():
                await self.send(await self.items.add(event))
            case ItemDelete(item_id=item_id):
                for deleted in await self.items.delete(item_id, self.responder.generating):
                    await self.send(deleted)
            case ItemRetrieve(item_id=item_id):
                await self.send(await self.items.retrieve(item_id))
            case OutputAudioClear():
                # Stop the reply's audio now: what was sent stays as the stored turn.
                reply = self.responder.reply
                response_id = reply.plan.response_id if reply is not None else None
                await self.responder.cancel("client_cancelled")
                await self.send(OutputAudioCleared(response_id=response_id))

    async def _update(self, update: Any) -> None:
        changes = changes_of(update)
        switching = check_update(self.config, changes, self.ports,
                                 busy=self.responder.pending or self.tasks.chain_busy)
        check_offered(self.ports, changes)
        if "tools" in changes or "tool_choice" in changes:
            self.responder.check_tools(changes.get("tools", self.config.tools),
                                       changes.get("tool_choice", self.config.tool_choice),
                                       "session", bool(changes.get("mcp_tools",
                                                                   self.config.mcp_tools)))
        if "mcp_tools" in changes:
            check_mcp(self.ports.llm, self.responder.llm_version, changes["mcp_tools"])
            changes["mcp_tools"] = self.mcp.configure(changes["mcp_tools"])
        if isinstance(changes.get("turn_detection"), SemanticVad):
            await self.taker.ensure_smart_turn()
        if "noise_reduction" in changes:
            await self._noise_reduction(changes["noise_reduction"])
        self.config = msgspec.structs.replace(self.config, **changes)
        if self.taker.configure(self.config) or switching:  # new rate, VAD or type
            self._clear()  # a clean buffer
        stored = stored_changes(self.config, changes)
        if stored:
            await self.store.update_session(self.record.id, **stored)
        await self.send(SessionUpdated(session=self.config))
        if "mcp_tools" in changes:  # the listings' events follow session.updated
            self.tasks.spawn(self.mcp.list_tools(self.outbound), "mcp list tools")

    async def _noise_reduction(self, setting: Any) -> None:
        """Turn the denoiser on (loaded on first use: a failure refuses the whole update),
        change its type, or turn it off (``null``)."""
        if setting is None:
            denoiser, self.denoiser = self.denoiser, None
            if denoiser is not None:
                denoiser.close()
        elif self.denoiser is None:
            self.denoiser = await load_denoiser(setting.type, self.input_rate,
                                                self.settings.denoise_model_path)
        else:
            self.denoiser.set_type(setting.type)

    def _clear(self) -> None:
        self.taker.clear()
        # The item id stays for the next turn: what partials of the dropped audio sent
        # must not count as sent for it.
        self.user_turns.forget_partials(self.taker.item_id)

    # --- audio in and turn frames ----------------------------------------------------------

    def _speaking(self) -> bool:
        return self.responder.speaking

    async def _audio(self, pcm: bytes) -> None:
        if not pcm or self._settling:  # shutting down: no new turn starts
            return
        samples = decode_input(pcm, self.config.input_audio_format)
        if self.audio_meter is not None:  # over the limit: this chunk is dropped
            await self.audio_meter(len(samples) / self.input_rate)
        if self.denoiser is not None:
            # In a thread: about 1.5 ms of CPU per 20 ms chunk, and the C runtime lets go
            # of the GIL, so sessions denoise in parallel instead of stalling the loop.
            samples = await asyncio.to_thread(self.denoiser, samples, self.input_rate)
        await self._turn(self.taker.feed(samples, self._speaking))

    async def _turn(self, turn_frames: Any) -> None:
        """Hand each frame of the turn taker to its stage, in order."""
        async for frame in turn_frames:
            await self._on_frame(frame)

    async def _on_frame(self, frame: frames.TurnFrame) -> None:
        match frame:
            case frames.SpeechStarted():
                self.idle.reset()
                if frame.interrupt_at is not None:
                    await self.responder.interrupt(frame.interrupt_at)  # barge-in
                await self.send(SpeechStarted(audio_start_ms=frame.audio_start_ms,
                                              item_id=frame.item_id))
            case frames.Interrupt(started=started):
                await self.responder.interrupt(started)
            case frames.Partial(item_id=item_id, audio=audio):
                self.taker.partials.started(
                    self.tasks.spawn(self._timed_partial(item_id, audio), "partial"))
            case frames.Paused():
                self.taker.speculating(self._speculate(frame))
            case frames.SpeechStopped():
                await self.send(SpeechStopped(audio_end_ms=frame.audio_end_ms,
                                              item_id=frame.item_id))
            case frames.ShortSpeech(stop=stop, started=started):
                self.tasks.spawn(self._short_speech(stop, started), "interruption")
            case frames.Committed():
                await self._committed(frame)

    async def _timed_partial(self, item_id: str, audio: Any) -> None:
        started = time.perf_counter()
        text = await self.user_turns.partial(item_id, audio)
        self.taker.partials.took(time.perf_counter() - started)
        # Prefill only mid-speech: in a silence the turn's final transcription is about to
        # start (or has), and the prefill would take CPU from it.
        if text and self.settings.realtime_prefill and self.taker.mid_speech and \
                answers_turns(self.config):
            self.responder.prefill(text)

    def _answer(self, epoch: int) -> Callable[[], bool]:
        """Whether a turn of speech epoch ``epoch`` is still to be answered."""
        return lambda: epoch == self.taker.epoch and not self.tasks.closing

    def _speculate(self, paused: frames.Paused) -> Speculation:
        held = HeldSink(self.outbound, self.tasks.spawn)
        pause, partial = paused.pause, paused.partial

        async def turn() -> None:
            if partial is not None:
                await asyncio.wait([partial])
            await self.user_turns.user_turn(
                paused.item_id, paused.audio, pause.ended_at, answer=self._answer(paused.epoch),
                held=held, turn_detection_ms=lambda: held.turn_detection_ms)

        return Speculation(held, self.tasks.enqueue(turn, "turn"))

    async def _committed(self, turn: frames.Committed) -> None:
        await self.send(AudioCommitted(item_id=turn.item_id,
                                       previous_item_id=turn.previous_item_id))
        speculation = turn.speculation
        if speculation is not None and turn.transcription is None:
            speculation.confirm(turn.turn_detection_ms)  # its work so far goes out now
            return
        if speculation is not None:
            speculation.cancel()
        self.tasks.enqueue(lambda: self.user_turns.user_turn(
            turn.item_id, turn.audio, turn.end_of_speech, answer=self._answer(turn.epoch),
            transcription=turn.transcription,
            turn_detection_ms=lambda: turn.turn_detection_ms), "turn")

    async def _short_speech(self, stop: SpeechStop, started: float) -> None:
        """Speech too short to interrupt by its length: a backchannel or noise is
        transcribed for the client but neither stored nor answered, and the reply plays
        on; anything else interrupts the reply and becomes the next turn."""
        try:
            result = await self.user_turns.transcribe_interruption(stop.audio)
        except Exception as exc:
            log.info("transcribing speech during a reply failed: %s", exc)
            return
        if is_backchannel(result.text):
            item_id, previous = self.taker.backchannel()
            await self.send(AudioCommitted(item_id=item_id, previous_item_id=previous))
            await self.send(TranscriptionCompleted(
                item_id=item_id, transcript=result.text.strip(), language=result.language))
            return
        await self.responder.interrupt(started)
        await self._turn(self.taker.commit(stop.audio, stop.ended_at, transcription=result))
