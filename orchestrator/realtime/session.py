"""One realtime connection: client events in, audio through the VAD, turns to the
conversation, and every task it starts tracked so closing leaks nothing.

Turns and replies run one after another on a chain (each job waits for the previous),
so stored turns keep conversation order; the receive loop never waits for them, which
is what lets a barge-in cancel a reply while it is still speaking.

Turn taking, fastest path first: at the first pause in the user's speech the turn is
transcribed and answered speculatively (:mod:`.speculation`: nothing is sent or stored
until the turn ends, and it is cancelled if the user goes on); ``semantic_vad`` asks
Smart Turn at that pause whether the user finished and ends the turn at once when so.
Speech during a spoken reply interrupts it once it lasts
``REALTIME_MIN_INTERRUPTION_MS``; shorter speech is transcribed first and a backchannel
("mm-hm") or noise leaves the reply playing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import msgspec
import numpy as np

from orchestrator.errors import AppError, Conflict, InvalidAudio, InvalidRequest, ShuttingDown
from orchestrator.realtime.audio import (
    STT_RATE,
    StreamResampler,
    decode_base64_audio,
    decode_input,
    format_rate,
)
from orchestrator.realtime.conversation import Conversation
from orchestrator.realtime.protocol.events import (
    AudioAppend,
    AudioClear,
    AudioCleared,
    AudioCommit,
    AudioCommitted,
    InputTranscription,
    ItemCreate,
    ItemDelete,
    ItemRetrieve,
    ItemTruncate,
    OutputAudioClear,
    OutputAudioCleared,
    ResponseCancel,
    ResponseCreate,
    SemanticVad,
    ServerVad,
    SessionConfig,
    SessionCreated,
    SessionUpdated,
    SessionUpdateEvent,
    SpeechStarted,
    SpeechStopped,
    TranscriptionCompleted,
    TurnDetection,
    client_event_decoder,
    invalid_event,
    new_id,
)
from orchestrator.realtime.protocol.outbound import OutboundQueue
from orchestrator.realtime.ports import Transcription, VoicePorts
from orchestrator.realtime.reply.stages import Pacing
from orchestrator.realtime.turns.smart_turn import (
    EAGERNESS,
    SmartTurnModel,
    end_aligned,
    transcript_finished,
    words_decide,
)
from orchestrator.realtime.turns.smart_turn import load_model as load_smart_turn
from orchestrator.realtime.turns.speculation import HeldSink, Speculation
from orchestrator.realtime.turns.vad import (
    SileroModel,
    SpeechPause,
    SpeechResume,
    SpeechStart,
    SpeechStop,
    TurnDetector,
)
from orchestrator.settings import Settings
from storage.conversations import ConversationStore, SessionRecord

log = logging.getLogger(__name__)
CLOSE_GRACE_S = 5.0  # how long a closing connection lets its last turn finish storing
# What a listener says to show they are following, not to take the turn (lower case,
# punctuation stripped). Speech during a reply that transcribes to only these words, or
# to nothing (a cough), leaves the reply playing.
BACKCHANNELS = frozenset({
    "mm", "mhm", "mm-hm", "mmhmm", "mm-hmm", "hm", "hmm", "uh-huh", "uh", "um", "ah", "oh",
    "yeah", "yep", "yes", "ok", "okay", "right", "sure", "i see", "got it", "cool", "nice",
    "wow", "huh", "alright", "all right", "uh huh", "mm hmm", "oh okay", "yeah yeah",
    # Korean: 네 / 예 (yes), 응 / 어 (yeah), 음 / 흠 (hm), 아 / 오 (oh), 그래 / 맞아 (right)…
    "네", "네네", "네 네", "예", "응", "응응", "어", "음", "음음", "흠", "아", "아하", "아 네",
    "오", "그래", "그래요", "맞아", "맞아요", "그렇죠", "그렇군요", "그렇구나", "아 그렇구나"})


def is_backchannel(text: str) -> bool:
    words = " ".join("".join(c for c in text.lower() if c.isalnum() or c in " -'").split())
    return not words or words in BACKCHANNELS


class _EventId(msgspec.Struct):
    event_id: str | None = None


def _event_id_of(text: str) -> str | None:
    """The client's ``event_id`` of an event that failed to decode, when it has one (the
    ``error`` names the event at fault)."""
    try:
        event_id = msgspec.json.decode(text, type=_EventId).event_id
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None
    return event_id[:128] if event_id else None


def decode_client_event(text: str) -> Any:
    """A text frame of ``/ws`` as one of :data:`~.events.ClientEvent`; a 400 otherwise."""
    try:
        return client_event_decoder.decode(text)
    except msgspec.ValidationError as exc:
        raise invalid_event(exc) from None
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"malformed JSON: {exc}") from None
    except RecursionError:
        raise InvalidRequest("malformed JSON: nested too deeply") from None


def default_server_vad(settings: Settings) -> ServerVad:
    return ServerVad(threshold=settings.vad_threshold,
                     prefix_padding_ms=settings.vad_prefix_padding_ms,
                     silence_duration_ms=settings.vad_silence_duration_ms)


def default_turn_detection(settings: Settings) -> TurnDetection:
    if settings.realtime_turn_detection == "semantic_vad":
        return SemanticVad(eagerness=settings.vad_eagerness)  # type: ignore[arg-type]
    return default_server_vad(settings)


def initial_config(record: SessionRecord, settings: Settings, has_tts: bool) -> SessionConfig:
    return SessionConfig(
        id=record.id, modalities=["text", "audio"] if has_tts else ["text"],
        instructions=record.instructions or settings.default_instructions,
        voice=record.voice or settings.default_voice, speed=1.0,
        input_audio_format="pcm16", output_audio_format="pcm16",
        input_sample_rate=24000, output_sample_rate=24000,
        input_audio_transcription=InputTranscription(language=record.language),
        turn_detection=default_turn_detection(settings),
        temperature=settings.llm_temperature,
        max_response_output_tokens=settings.llm_max_tokens)


class RealtimeSession:
    def __init__(self, record: SessionRecord, *, settings: Settings, ports: VoicePorts,
                 store: ConversationStore, outbound: OutboundQueue, vad: SileroModel,
                 audio_meter: Callable[[float], object] | None = None,
                 smart_turn: Callable[[], SmartTurnModel] | None = None,
                 decode_event: Callable[[str], Any] | None = None,
                 llm_version: str = "") -> None:
        self.record, self.settings, self.store, self.outbound = record, settings, store, outbound
        self.vad = vad
        self._load_smart_turn = smart_turn or (
            lambda: load_smart_turn(settings.smart_turn_model_path))
        self.smart_turn: SmartTurnModel | None = None
        self.audio_meter = audio_meter
        """Charged each chunk's seconds; raises RateLimited over the key's allowance."""
        self.decode_event = decode_event or decode_client_event
        """Text frame -> client event (``/v1/realtime`` decodes OpenAI's GA or beta shapes)."""
        self.config = initial_config(record, settings, ports.tts is not None)
        self.max_turn_samples = int(settings.realtime_max_turn_seconds * STT_RATE)
        self.tasks: set[asyncio.Task] = set()
        self.conversation = Conversation(
            user_id=record.user_id, session_id=record.id, ports=ports, store=store,
            outbound=outbound, config=lambda: self.config,
            history_turns=settings.realtime_history_turns,
            memory_top_k=settings.memory_top_k, memory_min_score=settings.memory_min_score,
            spawn=self._spawn, pacing=Pacing.from_settings(settings), llm_version=llm_version)
        self._chain: asyncio.Task | None = None
        self._detector: TurnDetector | None = None
        self._resampler = StreamResampler(self.input_rate, STT_RATE)
        self._manual: list[np.ndarray] = []
        self._manual_samples = 0
        self._speech_epoch = 0
        self._item_id = new_id("item")
        self._previous_item: str | None = None
        self._closing = False
        self._settling = False
        self._partial_interval = settings.realtime_partial_interval_ms * STT_RATE // 1000
        self._partial_at = 0  # turn samples at the last partial transcript
        self._partial: asyncio.Task | None = None
        self._partial_cost = 0  # how long the last partial took, in samples of audio time
        self._speculation: Speculation | None = None  # the current turn's, while paused
        self._finished_by_words: int | None = None
        """The silence (its start, ms) whose speculative transcript reads as a finished
        sentence: semantic_vad ends the turn there even when Smart Turn was unsure."""
        self._speculate = settings.realtime_speculate_ms > 0
        self._min_interruption = settings.realtime_min_interruption_ms * STT_RATE // 1000
        self._barge_in: tuple[float, int] | None = None
        """(clock, detector position) of speech that began during a spoken reply and has
        not interrupted it yet."""

    @property
    def input_rate(self) -> int:
        """The rate input audio arrives at (G.711 is 8 kHz whatever the PCM rate says)."""
        return format_rate(self.config.input_audio_format, self.config.input_sample_rate)

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        problem = None
        if isinstance(self.config.turn_detection, SemanticVad):
            try:
                await self._ensure_smart_turn()
            except InvalidRequest as exc:  # no turn model: fall back to silence, say so
                problem = exc
                self.config = msgspec.structs.replace(
                    self.config, turn_detection=default_server_vad(self.settings))
        self._detector = self._new_detector()
        await self.conversation.send(SessionCreated(session=self.config))
        if problem is not None:
            await self.conversation.send_error(problem)

    async def _ensure_smart_turn(self) -> None:
        if self.smart_turn is not None:
            return
        try:
            self.smart_turn = await asyncio.to_thread(self._load_smart_turn)
        except Exception as exc:
            log.warning("Smart Turn model unavailable: %s", exc)
            raise InvalidRequest(f"semantic_vad is unavailable: {exc}; use server_vad",
                                 param="session.turn_detection.type") from None

    async def close(self) -> None:
        """Cancel the reply in flight, let the last turn store what was said, then cancel
        every remaining task and wait for it (no task or stream outlives the socket)."""
        self._closing = True
        self._drop_speculation()
        await self.conversation.cancel("disconnect")
        if self._chain is not None:
            await asyncio.wait([self._chain], timeout=CLOSE_GRACE_S)
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def settle(self, timeout_s: float) -> None:
        """The server is shutting down: take no new turn, drop a speculative one (its user
        had not finished), and wait up to ``timeout_s`` for the turn in flight: its reply
        and stored rows."""
        self._settling = True
        self._drop_speculation()
        deadline = time.monotonic() + timeout_s
        while self._chain is not None and not self._chain.done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            await asyncio.wait([self._chain], timeout=remaining)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task:
        task = asyncio.create_task(coro, name=f"realtime {self.record.id} {name}")
        self.tasks.add(task)
        task.add_done_callback(self._reap)
        return task

    def _reap(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("realtime task %s failed", task.get_name(), exc_info=task.exception())

    def _enqueue(self, job: Callable[[], Awaitable[None]], name: str) -> asyncio.Task:
        previous = self._chain

        async def run() -> None:
            if previous is not None:
                await asyncio.wait([previous])
            if not self._closing or name == "turn":
                await job()

        self._chain = self._spawn(run(), name)
        return self._chain

    # --- client events ---------------------------------------------------------------------

    async def handle_text(self, text: str) -> None:
        """One JSON event; any problem becomes an ``error`` event and the socket stays up."""
        event_id = None
        try:
            event = self.decode_event(text)
            event_id = event.event_id
            await self._dispatch(event)
        except AppError as exc:
            await self.conversation.send_error(exc, event_id or _event_id_of(text))
        except Exception as exc:
            log.exception("realtime event failed")
            await self.conversation.send_error(exc, event_id)

    async def handle_bytes(self, data: bytes) -> None:
        """A binary frame: PCM16 audio, as ``input_audio_buffer.append``."""
        try:
            await self._audio(data)
        except AppError as exc:
            await self.conversation.send_error(exc)

    async def _dispatch(self, event: Any) -> None:
        if self._settling and isinstance(event, AudioCommit | ResponseCreate | ItemCreate):
            raise ShuttingDown("the server is shutting down: this session takes no new turn "
                               "here; reconnect to continue it")
        match event:
            case AudioAppend(audio=audio):
                await self._audio(decode_base64_audio(audio))
            case SessionUpdateEvent(session=update):
                await self._update(update)
            case AudioCommit():
                await self._commit_now()
            case AudioClear():
                self._clear()
                await self.conversation.send(AudioCleared())
            case ResponseCreate(response=options):
                if options.voice and self.conversation.ports.catalogue is not None:
                    self.conversation.ports.catalogue.check_voice(options.voice,
                                                                  param="response.voice")
                if options.modalities and "audio" in options.modalities and \
                        self.conversation.ports.tts is None:
                    raise InvalidRequest("audio replies are unavailable: text-to-speech is "
                                         "disabled", param="response.modalities")
                self.conversation.check_tools(
                    self.config.tools if options.tools is None else options.tools,
                    options.tool_choice, "response")
                if self.conversation.response_pending:
                    raise Conflict("a response is already in progress; cancel it first")
                self.conversation.response_pending = True
                self._enqueue(lambda: self.conversation.respond(options), "response")
            case ResponseCancel():
                if not await self.conversation.cancel("client_cancelled"):
                    raise InvalidRequest("no response in progress to cancel")
            case ItemTruncate(item_id=item_id, audio_end_ms=audio_end_ms):
                await self.conversation.truncate(item_id, audio_end_ms)
            case ItemCreate():
                await self.conversation.add_item(event)
            case ItemDelete(item_id=item_id):
                await self.conversation.delete_item(item_id)
            case ItemRetrieve(item_id=item_id):
                await self.conversation.retrieve_item(item_id)
            case OutputAudioClear():
                # Stop the reply's audio now: what was sent stays as the stored turn.
                reply = self.conversation.reply
                response_id = reply.plan.response_id if reply is not None else None
                await self.conversation.cancel("client_cancelled")
                await self.conversation.send(OutputAudioCleared(response_id=response_id))

    async def _update(self, update: Any) -> None:
        changes = {name: getattr(update, name) for name in update.__struct_fields__
                   if getattr(update, name) is not msgspec.UNSET}
        if "audio" in changes.get("modalities", []) and self.conversation.ports.tts is None:
            raise InvalidRequest("audio replies are unavailable: text-to-speech is disabled")
        self._check_offered(changes)
        if "tools" in changes or "tool_choice" in changes:
            self.conversation.check_tools(changes.get("tools", self.config.tools),
                                          changes.get("tool_choice", self.config.tool_choice),
                                          "session")
        if isinstance(changes.get("turn_detection"), SemanticVad):
            await self._ensure_smart_turn()
        before = (self.config.turn_detection, self.input_rate)
        self.config = msgspec.structs.replace(self.config, **changes)
        if (self.config.turn_detection, self.input_rate) != before:
            self._detector = self._new_detector()  # new rate or VAD: start a clean buffer
            self._clear()
        stored = {"voice": changes.get("voice"), "instructions": changes.get("instructions"),
                  "language": self.config.input_audio_transcription.language
                  if "input_audio_transcription" in changes else None}
        stored = {key: value for key, value in stored.items() if value is not None}
        if stored:
            await self.store.update_session(self.record.id, **stored)
        await self.conversation.send(SessionUpdated(session=self.config))

    def _check_offered(self, changes: dict[str, Any]) -> None:
        """A voice or language the served models lack is refused now, not at the next turn."""
        catalogue = self.conversation.ports.catalogue
        if catalogue is None:
            return
        if changes.get("voice"):
            catalogue.check_voice(changes["voice"], param="session.voice")
        transcription = changes.get("input_audio_transcription")
        if transcription is not None:
            catalogue.check_language(transcription.language,
                                     param="session.input_audio_transcription.language")

    # --- audio in --------------------------------------------------------------------------

    def _new_detector(self) -> TurnDetector | None:
        vad, settings = self.config.turn_detection, self.settings
        max_turn_ms = int(settings.realtime_max_turn_seconds * 1000)
        if vad is None:
            return None
        if isinstance(vad, SemanticVad):
            eagerness = EAGERNESS[vad.eagerness]
            return TurnDetector(self.vad.stream(), threshold=settings.vad_threshold,
                                prefix_padding_ms=settings.vad_prefix_padding_ms,
                                silence_duration_ms=eagerness.max_silence_ms,
                                max_turn_ms=max_turn_ms,
                                pause_ms=(settings.realtime_speculate_ms, eagerness.check_ms))
        return TurnDetector(self.vad.stream(), threshold=vad.threshold,
                            prefix_padding_ms=vad.prefix_padding_ms,
                            silence_duration_ms=vad.silence_duration_ms, max_turn_ms=max_turn_ms,
                            pause_ms=(settings.realtime_speculate_ms,))

    async def _audio(self, pcm: bytes) -> None:
        if not pcm or self._settling:  # shutting down: no new turn starts
            return
        samples = decode_input(pcm, self.config.input_audio_format)
        if self.audio_meter is not None:  # over the limit: this chunk is dropped
            self.audio_meter(len(samples) / self.input_rate)
        if self._resampler.source_rate != self.input_rate:
            self._resampler = StreamResampler(self.input_rate, STT_RATE)
        samples = self._resampler(samples)
        if self._detector is None:
            if self._manual_samples + len(samples) > self.max_turn_samples:
                raise InvalidAudio(f"input audio buffer is full "
                                   f"({self.settings.realtime_max_turn_seconds:g} s): commit or "
                                   f"clear it")
            self._manual.append(samples)
            self._manual_samples += len(samples)
            return
        detector = self._detector
        # Off the event loop: a long chunk (audio faster than real time) is many frames.
        events = await asyncio.to_thread(detector.feed, samples)
        for event in events:
            if detector is not self._detector:
                return  # a session.update replaced the detector meanwhile
            match event:
                case SpeechStart():
                    await self._speech_started(event)
                case SpeechPause():
                    await self._paused(detector, event)
                case SpeechResume():
                    self._drop_speculation()
                case SpeechStop():
                    await self._speech_stopped(event)
        if self._finished_by_words is not None:
            await self._end_if_finished_by_words(detector)
        if self._barge_in is not None and detector.in_speech and \
                detector.silence_start_ms is None and \
                detector.position - self._barge_in[1] >= self._min_interruption:
            started, _ = self._barge_in
            self._barge_in = None
            await self.conversation.interrupt(started)  # long enough: a real barge-in
        self._maybe_partial(detector)

    async def _paused(self, detector: TurnDetector, pause: SpeechPause) -> None:
        """A short silence in the turn: start the turn's work speculatively (from
        ``REALTIME_SPECULATE_MS``), and under ``semantic_vad`` end the turn now when Smart
        Turn judges it complete (at the eagerness's check)."""
        if self._speculate and self._speculation is None and self._barge_in is None and \
                pause.silence_ms >= self.settings.realtime_speculate_ms:
            self._speculation = self._start_speculation(pause)
        vad = self.config.turn_detection
        if not isinstance(vad, SemanticVad) or self.smart_turn is None or \
                pause.silence_ms < EAGERNESS[vad.eagerness].check_ms or \
                words_decide(self.config.input_audio_transcription.language):
            return  # Korean: the transcript ends the turn (heard below), or the long silence
        model = self.smart_turn
        probability = await asyncio.to_thread(  # the cut reads the whole turn: off the loop
            lambda: model.completion(end_aligned(pause.audio, pause.silence_samples)))
        # Audio that arrived meanwhile may have resumed or ended the turn already.
        if probability >= EAGERNESS[vad.eagerness].threshold and detector is self._detector \
                and detector.paused and detector.silence_start_ms == pause.audio_end_ms:
            await self._end_turn_now(detector)

    async def _end_turn_now(self, detector: TurnDetector) -> None:
        """End the turn at its current silence (judged finished before the long wait)."""
        stop = detector.end_turn()
        if stop is not None:
            await self._speech_stopped(stop)

    async def _end_if_finished_by_words(self, detector: TurnDetector) -> None:
        """End the turn on its transcript's word once its silence is as long as Smart
        Turn's check (the words do not end a turn sooner than the intonation would)."""
        vad = self.config.turn_detection
        if not isinstance(vad, SemanticVad) or vad.eagerness == "low" or \
                detector is not self._detector or not detector.paused or \
                detector.silence_start_ms != self._finished_by_words:
            self._finished_by_words = None  # another silence, or speech again
            return
        if detector.silence_ms_so_far >= EAGERNESS[vad.eagerness].check_ms:
            self._finished_by_words = None
            await self._end_turn_now(detector)

    def _start_speculation(self, pause: SpeechPause) -> Speculation:
        held = HeldSink(self.outbound, self._spawn)

        def heard(text: str, language: str | None) -> None:
            # Acted on with the next audio chunk: the detector is not touched from here.
            if transcript_finished(text, language):
                self._finished_by_words = pause.audio_end_ms

        held.on_transcript = heard
        item_id, epoch = self._item_id, self._speech_epoch
        # A partial transcript still running holds the stt model anyway (Triton finishes
        # it even when cancelled): let it finish, and its tokens make the final decode a
        # one-pass check of a draft that covers almost all the audio.
        partial = self._partial if self._partial is not None and not self._partial.done() \
            else None

        async def turn() -> None:
            if partial is not None:
                await asyncio.wait([partial])
            await self.conversation.user_turn(
                item_id, pause.audio, pause.ended_at,
                answer=lambda: epoch == self._speech_epoch and not self._closing, held=held,
                turn_detection_ms=lambda: held.turn_detection_ms)

        return Speculation(held, self._enqueue(turn, "turn"))

    def _drop_speculation(self) -> None:
        """The user went on: the speculative turn leaves nothing behind."""
        self._finished_by_words = None
        if self._speculation is not None:
            self._speculation.cancel()
            self._speculation = None

    def _maybe_partial(self, detector: TurnDetector) -> None:
        """Transcribe the growing turn after every ``REALTIME_PARTIAL_INTERVAL_MS`` of new
        speech, one at a time (a partial never queues behind another), and no more often
        than every twice the last partial's duration: a slow model (Whisper on a small
        CPU) is left mostly free for the final transcript."""
        if not self._partial_interval or not detector.in_speech or detector.paused:
            return
        if detector.turn_samples - self._partial_at < max(self._partial_interval,
                                                          2 * self._partial_cost):
            return
        if self._partial is not None and not self._partial.done():
            return
        audio = detector.turn_audio()
        if audio is None:
            return
        self._partial_at = detector.turn_samples
        self._partial = self._spawn(self._timed_partial(self._item_id, audio), "partial")

    async def _timed_partial(self, item_id: str, audio: np.ndarray) -> None:
        started = time.perf_counter()
        await self.conversation.partial(item_id, audio)
        self._partial_cost = int((time.perf_counter() - started) * STT_RATE)

    async def _speech_started(self, event: SpeechStart) -> None:
        self._speech_epoch += 1
        vad = self.config.turn_detection
        if vad is not None and vad.interrupt_response:
            if self.conversation.speaking and self._min_interruption:
                # Maybe a backchannel: it interrupts once it lasts (see _audio) or once
                # its transcript shows it is more (see _speech_stopped).
                assert self._detector is not None
                self._barge_in = (time.perf_counter(), self._detector.position)
            else:
                await self.conversation.interrupt(time.perf_counter())  # barge-in
        await self.conversation.send(SpeechStarted(audio_start_ms=event.audio_start_ms,
                                                   item_id=self._item_id))

    async def _speech_stopped(self, event: SpeechStop) -> None:
        await self.conversation.send(SpeechStopped(audio_end_ms=event.audio_end_ms,
                                                   item_id=self._item_id))
        barge_in, self._barge_in = self._barge_in, None
        if barge_in is not None and self.conversation.speaking and self.conversation.ports.stt:
            self._spawn(self._short_interruption(event, barge_in[0]), "interruption")
            return
        await self._commit(event.audio, event.ended_at)

    async def _short_interruption(self, event: SpeechStop, started: float) -> None:
        """Speech too short to interrupt by its length: a backchannel or noise is
        transcribed for the client but neither stored nor answered, and the reply plays
        on; anything else interrupts the reply and becomes the next turn."""
        try:
            result = await self.conversation.transcribe_interruption(event.audio)
        except Exception as exc:
            log.info("transcribing speech during a reply failed: %s", exc)
            return
        if is_backchannel(result.text):
            item_id, self._item_id = self._item_id, new_id("item")
            await self.conversation.send(AudioCommitted(item_id=item_id,
                                                        previous_item_id=self._previous_item))
            await self.conversation.send(TranscriptionCompleted(
                item_id=item_id, transcript=result.text.strip(), language=result.language))
            return
        await self.conversation.interrupt(started)
        await self._commit(event.audio, event.ended_at, transcription=result)

    async def _commit_now(self) -> None:
        if self._detector is not None:
            stop = self._detector.flush()
            if stop is None:
                raise InvalidRequest("input audio buffer is empty: no speech to commit")
            await self._speech_stopped(stop)
            return
        tail = self._resampler.flush()
        if tail.size:
            self._manual.append(tail)
            self._manual_samples += tail.size
        if not self._manual_samples:
            raise InvalidRequest("input audio buffer is empty: append audio before commit")
        audio = np.concatenate(self._manual)
        self._clear()
        await self._commit(audio)

    def _stop_partial(self) -> None:
        """Stop the partial transcript in flight: it would only keep the model from the
        final one."""
        if self._partial is not None and not self._partial.done():
            self._partial.cancel()

    def _reset_partial(self) -> None:
        """The turn in progress ended (committed or cleared)."""
        self._partial_at = 0
        self._stop_partial()

    async def _commit(self, audio: np.ndarray, ended_at: float | None = None,
                      transcription: Transcription | None = None) -> None:
        """End the turn. ``ended_at``: clock time of its last voiced audio (voice to
        voice counts from there); None: now (a manual commit)."""
        now = time.perf_counter()
        end_of_speech = ended_at if ended_at is not None else now
        turn_detection_ms = round((now - end_of_speech) * 1000, 3)
        self._reset_partial()  # the final transcript replaces it
        item_id, self._item_id = self._item_id, new_id("item")
        await self.conversation.send(AudioCommitted(item_id=item_id,
                                                    previous_item_id=self._previous_item))
        self._previous_item = item_id
        speculation, self._speculation = self._speculation, None
        if speculation is not None and transcription is None:
            speculation.confirm(turn_detection_ms)  # its work so far goes out now
            return
        if speculation is not None:
            speculation.cancel()
        epoch = self._speech_epoch
        self._enqueue(lambda: self.conversation.user_turn(
            item_id, audio, end_of_speech,
            answer=lambda: epoch == self._speech_epoch and not self._closing,
            transcription=transcription, turn_detection_ms=lambda: turn_detection_ms), "turn")

    def _clear(self) -> None:
        self._drop_speculation()
        self._barge_in = None
        self._manual, self._manual_samples = [], 0
        if self._detector is not None:
            self._detector.clear()
        # The item id stays for the next turn: what partials of the dropped audio sent
        # must not count as sent for it.
        self._reset_partial()
        self.conversation.forget_partials(self._item_id)
