"""Turn taking: audio frames in, typed turn frames (:mod:`.frames`) out.

The :class:`TurnTaker` owns the VAD's turn detector, Smart Turn, the speculative turn
and the input item ids; it decides when a turn starts, pauses, ends or is cancelled,
when a partial transcript is due (:mod:`.partials`), and when speech over a reply is a
barge-in. It never transcribes, answers or sends anything: the session hands each frame
to the stage it concerns.

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
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np

from orchestrator.errors import InvalidAudio, InvalidRequest
from orchestrator.realtime.audio import StreamResampler, format_rate
from orchestrator.realtime.protocol.session_types import SemanticVad, SessionConfig, new_id
from orchestrator.realtime.turns.frames import (
    Cancelled,
    Committed,
    Interrupt,
    Paused,
    ShortSpeech,
    SpeechStarted,
    SpeechStopped,
    TurnFrame,
)
from orchestrator.realtime.turns.partials import PartialPacing
from orchestrator.realtime.turns.smart_turn import (
    EAGERNESS,
    SmartTurnModel,
    end_aligned,
    transcript_finished,
    words_decide,
)
from orchestrator.realtime.turns.speculation import Speculation
from orchestrator.realtime.turns.vad import (
    SileroModel,
    SpeechPause,
    SpeechResume,
    SpeechStart,
    SpeechStop,
    TurnDetector,
)
from orchestrator.settings import Settings
from orchestrator.speech.audio_format import MODEL_RATE

log = logging.getLogger(__name__)


class TurnTaker:
    def __init__(self, config: SessionConfig, *, settings: Settings, vad: SileroModel,
                 smart_turn: Callable[[], SmartTurnModel], transcribes: bool = True) -> None:
        self.config, self.settings, self.vad = config, settings, vad
        self._load_smart_turn = smart_turn
        self.smart_turn: SmartTurnModel | None = None
        self.transcribes = transcribes
        """Speech-to-text is served (speech during a reply can be told from a backchannel)."""
        self.max_turn_samples = int(settings.realtime_max_turn_seconds * MODEL_RATE)
        self._detector: TurnDetector | None = None
        self._resampler = StreamResampler(self.input_rate, MODEL_RATE)
        self._manual: list[np.ndarray] = []
        self._manual_samples = 0
        self.epoch = 0
        """Counts speech starts: a turn's reply is moot once newer speech began."""
        self.item_id = new_id("item")
        """The input item the audio being spoken will be committed as."""
        self.previous_item: str | None = None
        self.partials = PartialPacing(settings.realtime_partial_interval_ms)
        self._speculation: Speculation | None = None  # the current turn's, while paused
        self._speculation_pause: SpeechPause | None = None
        self._transcript_read: Speculation | None = None
        self._finished_by_words: int | None = None
        """The silence (its start, ms) whose speculative transcript reads as a finished
        sentence: semantic_vad ends the turn there even when Smart Turn was unsure."""
        self._speculate = settings.realtime_speculate_ms > 0
        self._min_interruption = settings.realtime_min_interruption_ms * MODEL_RATE // 1000
        self._barge_in: tuple[float, int] | None = None
        """(clock, detector position) of speech that began during a spoken reply and has
        not interrupted it yet."""

    @property
    def input_rate(self) -> int:
        """The rate input audio arrives at (G.711 is 8 kHz whatever the PCM rate says)."""
        return format_rate(self.config.input_audio_format, self.config.input_sample_rate)

    @property
    def audio_ms(self) -> int:
        """How much input audio the VAD has read (ms): the offsets its events give."""
        return self._detector.position * 1000 // MODEL_RATE if self._detector is not None else 0

    @property
    def mid_speech(self) -> bool:
        """The user is speaking right now: in a turn, and not in a silence inside it."""
        detector = self._detector
        return detector is not None and detector.in_speech and detector.silence_start_ms is None

    @property
    def in_speech(self) -> bool:
        """The user is speaking (a turn has started and not ended)."""
        return self._detector is not None and self._detector.in_speech

    # --- configuration ---------------------------------------------------------------------

    async def ensure_smart_turn(self) -> None:
        if self.smart_turn is not None:
            return
        try:
            self.smart_turn = await asyncio.to_thread(self._load_smart_turn)
        except Exception as exc:
            log.warning("Smart Turn model unavailable: %s", exc)
            raise InvalidRequest(f"semantic_vad is unavailable: {exc}; use server_vad",
                                 param="session.turn_detection.type") from None

    def start(self, config: SessionConfig) -> None:
        """The session starts with ``config`` (its turn detection may have fallen back)."""
        self.config = config
        self._detector = self._new_detector()

    def configure(self, config: SessionConfig) -> bool:
        """Take the session's new config; True when its VAD or input rate changed, which
        starts a clean buffer (the turn in progress is dropped)."""
        before = (self.config.turn_detection, self.input_rate)
        self.config = config
        if (config.turn_detection, self.input_rate) == before:
            return False
        self._detector = self._new_detector()
        self.clear()
        return True

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

    # --- audio in --------------------------------------------------------------------------

    async def feed(self, samples: np.ndarray, speaking: Callable[[], bool] = lambda: False,
                   ) -> AsyncIterator[TurnFrame]:
        """One chunk of input audio (at :attr:`input_rate`). ``speaking``: whether a spoken
        reply is in flight or playing (asked when speech starts or stops)."""
        if self._resampler.source_rate != self.input_rate:
            self._resampler = StreamResampler(self.input_rate, MODEL_RATE)
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
                    yield self._speech_started(event, speaking)
                case SpeechPause():
                    async for frame in self._paused(detector, event, speaking):
                        yield frame
                case SpeechResume():
                    if self._drop_speculation():
                        yield Cancelled("resumed")
                case SpeechStop():
                    async for frame in self._speech_stopped(event, speaking):
                        yield frame
        self._read_speculative_transcript()
        if self._finished_by_words is not None:
            async for frame in self._end_if_finished_by_words(detector, speaking):
                yield frame
        if self._barge_in is not None and detector.in_speech and \
                detector.silence_start_ms is None and \
                detector.position - self._barge_in[1] >= self._min_interruption:
            started, _ = self._barge_in
            self._barge_in = None
            yield Interrupt(started)  # long enough: a real barge-in
        partial = self.partials.due(detector, self.item_id)
        if partial is not None:
            yield partial

    def _speech_started(self, event: SpeechStart, speaking: Callable[[], bool]) -> SpeechStarted:
        self.epoch += 1
        vad, interrupt_at = self.config.turn_detection, None
        if vad is not None and vad.interrupt_response:
            if speaking() and self._min_interruption:
                # Maybe a backchannel: it interrupts once it lasts (see feed) or once its
                # transcript shows it is more (see ShortSpeech).
                assert self._detector is not None
                self._barge_in = (time.perf_counter(), self._detector.position)
            else:
                interrupt_at = time.perf_counter()  # barge-in
        return SpeechStarted(event.audio_start_ms, self.item_id, interrupt_at)

    async def _paused(self, detector: TurnDetector, pause: SpeechPause,
                      speaking: Callable[[], bool]) -> AsyncIterator[TurnFrame]:
        """A short silence in the turn: start the turn's work speculatively (from
        ``REALTIME_SPECULATE_MS``), and under ``semantic_vad`` end the turn now when Smart
        Turn judges it complete (at the eagerness's check)."""
        if self._speculate and self._speculation is None and self._barge_in is None and \
                pause.silence_ms >= self.settings.realtime_speculate_ms:
            # A partial transcript still running holds the stt model anyway (Triton
            # finishes it even when cancelled): the turn lets it finish, and its tokens
            # make the final decode a one-pass check of a draft covering almost all audio.
            self._speculation_pause = pause
            yield Paused(self.item_id, pause, self.epoch, self.partials.running())
        vad = self.config.turn_detection
        if not isinstance(vad, SemanticVad) or self.smart_turn is None or \
                pause.silence_ms < EAGERNESS[vad.eagerness].check_ms or \
                words_decide(self.config.input_audio_transcription.language):
            return  # Korean: the transcript ends the turn (read in feed), or the long silence
        model = self.smart_turn
        probability = await asyncio.to_thread(  # the cut reads the whole turn: off the loop
            lambda: model.completion(end_aligned(pause.audio, pause.silence_samples)))
        # Audio that arrived meanwhile may have resumed or ended the turn already.
        if probability >= EAGERNESS[vad.eagerness].threshold and detector is self._detector \
                and detector.paused and detector.silence_start_ms == pause.audio_end_ms:
            async for frame in self._end_turn_now(detector, speaking):
                yield frame

    def speculating(self, speculation: Speculation) -> None:
        """The session started the work of the turn that :class:`Paused` announced."""
        self._speculation = speculation

    def _read_speculative_transcript(self) -> None:
        """The speculative turn's transcript, once known, is a second opinion: a finished
        sentence lets semantic_vad end the turn at this silence."""
        speculation = self._speculation
        if speculation is None or speculation is self._transcript_read or \
                speculation.sink.transcript is None:
            return
        self._transcript_read = speculation
        text, language = speculation.sink.transcript
        if transcript_finished(text, language) and self._speculation_pause is not None:
            self._finished_by_words = self._speculation_pause.audio_end_ms

    async def _end_turn_now(self, detector: TurnDetector, speaking: Callable[[], bool],
                            ) -> AsyncIterator[TurnFrame]:
        """End the turn at its current silence (judged finished before the long wait)."""
        stop = detector.end_turn()
        if stop is not None:
            async for frame in self._speech_stopped(stop, speaking):
                yield frame

    async def _end_if_finished_by_words(self, detector: TurnDetector,
                                        speaking: Callable[[], bool],
                                        ) -> AsyncIterator[TurnFrame]:
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
            async for frame in self._end_turn_now(detector, speaking):
                yield frame

    def _drop_speculation(self) -> bool:
        """The user went on: the speculative turn leaves nothing behind."""
        self._finished_by_words = None
        speculation, self._speculation = self._speculation, None
        if speculation is None:
            return False
        speculation.cancel()
        return True

    def drop_speculation(self) -> None:
        """Closing or shutting down: a speculative turn's user had not finished."""
        self._drop_speculation()

    # --- turn end --------------------------------------------------------------------------

    async def _speech_stopped(self, event: SpeechStop, speaking: Callable[[], bool],
                              ) -> AsyncIterator[TurnFrame]:
        yield SpeechStopped(event.audio_end_ms, self.item_id)
        barge_in, self._barge_in = self._barge_in, None
        if barge_in is not None and speaking() and self.transcribes:
            yield ShortSpeech(event, barge_in[0])
            return
        async for frame in self.commit(event.audio, event.ended_at):
            yield frame

    async def commit_now(self, speaking: Callable[[], bool] = lambda: False,
                         ) -> AsyncIterator[TurnFrame]:
        """``input_audio_buffer.commit``: end the turn with the audio so far."""
        if self._detector is not None:
            stop = self._detector.flush()
            if stop is None:
                raise InvalidRequest("input audio buffer is empty: no speech to commit")
            async for frame in self._speech_stopped(stop, speaking):
                yield frame
            return
        tail = self._resampler.flush()
        if tail.size:
            self._manual.append(tail)
            self._manual_samples += tail.size
        if not self._manual_samples:
            raise InvalidRequest("input audio buffer is empty: append audio before commit")
        audio = np.concatenate(self._manual)
        self.clear()
        async for frame in self.commit(audio):
            yield frame

    async def commit(self, audio: np.ndarray, ended_at: float | None = None,
                     transcription: Any = None) -> AsyncIterator[TurnFrame]:
        """End the turn. ``ended_at``: clock time of its last voiced audio (voice to voice
        counts from there); None: now (a manual commit). ``transcription``: the turn was
        transcribed already (speech during a reply)."""
        now = time.perf_counter()
        end_of_speech = ended_at if ended_at is not None else now
        turn_detection_ms = round((now - end_of_speech) * 1000, 3)
        self.partials.reset()  # the final transcript replaces it
        item_id, self.item_id = self.item_id, new_id("item")
        speculation, self._speculation = self._speculation, None
        previous, self.previous_item = self.previous_item, item_id
        yield Committed(item_id, previous, audio, end_of_speech, turn_detection_ms,
                        self.epoch, speculation, transcription)

    def backchannel(self) -> tuple[str, str | None]:
        """Speech during a reply was a backchannel: it takes the current item id (its
        transcript is shown, not stored). Returns (item id, previous item id)."""
        item_id, self.item_id = self.item_id, new_id("item")
        return item_id, self.previous_item

    def clear(self) -> bool:
        """``input_audio_buffer.clear``: drop the audio so far. The item id stays for the
        next turn. True when a speculative turn was dropped with it."""
        dropped = self._drop_speculation()
        self._barge_in = None
        self._manual, self._manual_samples = [], 0
        if self._detector is not None:
            self._detector.clear()
        self.partials.reset()
        return dropped
