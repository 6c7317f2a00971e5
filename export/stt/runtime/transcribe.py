"""Whole recordings: openai-whisper's ``transcribe()`` loop over 30-second windows.

Same seek arithmetic, segment splitting on timestamp pairs, no-speech skipping
(no_speech_prob above its threshold and avg_logprob below the log-prob threshold:
the window is silence and gives no text) and prompt conditioning on previous text.
With ``word_timestamps`` each segment gets its ``words`` (``timing.py``) and the next
window starts after the last word, as in openai-whisper; clip_timestamps and
hallucination_silence_threshold are not ported.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .decoding import WhisperOnnx, WindowDecoder, WindowResult
from .frontend import HOP_LENGTH, N_FRAMES, N_SAMPLES, SAMPLE_RATE, log_mel_spectrogram, pad_or_trim
from .timing import add_word_timestamps, align_words, last_word_end
from .tokenizer import WhisperTokenizer

FRAMES_PER_SECOND = SAMPLE_RATE // HOP_LENGTH
DECODING_FILE = "decoding.json"


def decoding_options(version_dir: Path, min_window_seconds: float) -> dict[str, Any]:
    """How a version decodes: its own ``decoding.json`` (written at export since
    2026-12-05, so the error rates its manifest holds were measured with it: window size,
    repetition guard, silence gate), unless the config's ``min_window_seconds`` overrides
    the window (any value above 0). Without the file: 30 s windows, no guard and no gate,
    as before."""
    path = Path(version_dir) / DECODING_FILE
    own = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    given = float(min_window_seconds)
    return {"min_window_seconds": given if given > 0
            else float(own.get("min_window_seconds", 30.0)),
            "max_repeats": int(own.get("max_repeats", 0)),
            "silence_gate": bool(own.get("silence_gate", False))}


@dataclass
class TranscriptionJob:
    """One recording, prepared: its mel and the first encoder inputs (batched by the caller)."""

    mel: np.ndarray
    content_frames: int
    language: str | None
    task: str
    prompt: str | None
    temperature: float
    detect: bool
    min_frames: int = N_FRAMES
    """Shortest encoder window in mel frames; N_FRAMES: every window padded to 30 s."""
    word_timestamps: bool = False
    silent: bool = False
    """The version's detector heard no speech in it: nothing is decoded."""

    def window(self, seek: int, size: int) -> np.ndarray:
        """The mel of one window: ``size`` frames from ``seek``, zero-padded to
        :func:`window_frames`."""
        return pad_or_trim(self.mel[:, seek:seek + size], window_frames(size, self.min_frames))

    def initial_mels(self) -> list[np.ndarray]:
        """Encoder inputs needed before decoding starts: the first window, which also
        serves language detection when it is a 30 s one (one encoder pass, not two:
        openai-whisper encodes a separate detection input, which doubled the latency of
        every turn in a session with no language set); a sized first window is followed
        by the 30 s one detection reads (Whisper learnt to tell languages from 30 s: on a
        sized window of "How many people live in London?" it detected Thai)."""
        if self.silent:
            return []
        if self.content_frames <= 0:
            return [pad_or_trim(self.mel, N_FRAMES)] if self.detect else []
        first = self.window(0, min(N_FRAMES, self.content_frames))
        if self.detect and first.shape[-1] < N_FRAMES:
            return [first, pad_or_trim(self.mel[:, :N_FRAMES], N_FRAMES)]
        return [first]


SIZED_HEADROOM_FRAMES = 100
"""A sized window is at least this much (1 s) longer than its audio. Whisper learnt on
30 s windows; with the speech running to the window's very end it looped: 4-5 s Korean
utterances in windows rounded up to whole seconds gave CER 1.35 (every sentence said
again and again), with a second of headroom 0.063 (0.083 in 30 s windows)."""


def window_frames(size: int, min_frames: int) -> int:
    """Encoder frames for a window with ``size`` frames of audio: 3000 (30 s, openai-whisper)
    unless sized windows are on (``min_frames`` < 3000), then the audio and a second of
    headroom rounded up to whole seconds, at least ``min_frames`` (whisper.cpp's
    ``audio_ctx``)."""
    if min_frames >= N_FRAMES:
        return N_FRAMES
    return min(N_FRAMES, max(min_frames,
                             -(-(size + SIZED_HEADROOM_FRAMES) // 100) * 100))


@dataclass
class Transcription:
    text: str
    language: str
    segments: list[dict] = field(default_factory=list)
    duration: float = 0.0
    language_probability: float | None = None


class Transcriber:
    def __init__(self, model: WhisperOnnx, tokenizer: WhisperTokenizer, filters: np.ndarray,
                 *, no_speech_threshold: float | None = 0.6,
                 logprob_threshold: float | None = -1.0,
                 condition_on_previous_text: bool = True,
                 min_window_seconds: float = 30.0, max_repeats: int = 0,
                 speech_gate: Callable[[np.ndarray], bool] | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.filters = filters
        self.decoder = WindowDecoder(model, tokenizer)
        self.no_speech_threshold = no_speech_threshold
        self.logprob_threshold = logprob_threshold
        self.condition_on_previous_text = condition_on_previous_text
        self.max_repeats = max_repeats
        self.speech_gate = speech_gate
        """Whether audio holds speech (the version's detector); audio without any is not
        decoded, so it gives an empty transcript rather than a hallucination."""
        # Sized windows need an encoder exported with a free frame axis (newer exports).
        seconds = min_window_seconds if model.sized else 30.0
        self.min_frames = min(N_FRAMES, max(2, int(seconds * 100) // 2 * 2)) if seconds > 0 \
            else N_FRAMES
        self.input_stride = N_FRAMES // model.dims["n_audio_ctx"]
        self.time_precision = self.input_stride * HOP_LENGTH / SAMPLE_RATE

    def prepare(self, audio: np.ndarray, *, language: str | None = None,
                task: str = "transcribe", prompt: str | None = None,
                temperature: float = 0.0, word_timestamps: bool = False) -> TranscriptionJob:
        """Validate options (ValueError) and compute the log-mel of the whole recording."""
        if task not in ("transcribe", "translate"):
            raise ValueError(f"task must be transcribe or translate, not {task!r}")
        if word_timestamps and not self.model.aligns:
            raise ValueError("invalid request: word timestamps need a version exported "
                             "since 2026-12-02 (its decoder gives the alignment heads); "
                             "re-export this checkpoint")
        if not self.tokenizer.multilingual:
            # English-only vocabularies have no language tokens to look "en" up in.
            if language and language.strip().lower() not in ("en", "english"):
                raise ValueError(f"this model is English-only; language {language!r} "
                                 "is not supported")
            language = "en"
        elif language:
            language = self.tokenizer.language_code(language)
        mel = log_mel_spectrogram(audio, self.filters, padding=N_SAMPLES)
        silent = self.speech_gate is not None and not self.speech_gate(audio)
        return TranscriptionJob(mel=mel, content_frames=mel.shape[-1] - N_FRAMES,
                                language=language, task=task, prompt=prompt,
                                temperature=temperature, detect=language is None and not silent,
                                min_frames=self.min_frames, word_timestamps=word_timestamps,
                                silent=silent)

    def encode(self, mels: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Encoder outputs for several mels of one length in one batch."""
        if not mels:
            return []
        cross_k, cross_v = self.model.encode(np.stack(mels))
        return [(cross_k[:, i:i + 1], cross_v[:, i:i + 1]) for i in range(len(mels))]

    def run(self, job: TranscriptionJob,
            initial: list[tuple[np.ndarray, np.ndarray]] | None = None) -> Transcription:
        """Transcribe ``job``; ``initial`` are the encoder outputs of ``job.initial_mels()``."""
        initial = list(initial) if initial is not None else \
            [self.encode([mel])[0] for mel in job.initial_mels()]  # lengths may differ
        tok = self.tokenizer
        duration = job.content_frames * HOP_LENGTH / SAMPLE_RATE
        if job.silent:
            return Transcription(text="", language=job.language or "en", duration=duration)
        language = job.language
        language_probability = None
        if job.detect:  # on the last initial output: the first window's unless it is sized
            language, probs = self.decoder.detect_language(initial[-1])[0]
            language_probability = probs[language]
        # English-only models transcribe with language "en" but no language token.
        decode_language = language if tok.multilingual else None

        seek = 0
        all_tokens: list[int] = []
        segments: list[dict] = []
        prompt_reset_since = 0
        initial_prompt_tokens: list[int] = []
        if job.prompt is not None:
            initial_prompt_tokens = tok.encode(" " + job.prompt.strip())
            all_tokens.extend(initial_prompt_tokens)
        rng = np.random.default_rng() if job.temperature > 0 else None
        last_speech = 0.0
        while seek < job.content_frames:
            time_offset = float(seek * HOP_LENGTH / SAMPLE_RATE)
            segment_size = min(N_FRAMES, job.content_frames - seek)
            segment_duration = segment_size * HOP_LENGTH / SAMPLE_RATE
            if seek == 0 and initial:
                cross = initial.pop(0)
            else:
                cross = self.encode([job.window(seek, segment_size)])[0]
            result = self.decoder.decode(cross, language=decode_language, task=job.task,
                                         prompt=all_tokens[prompt_reset_since:],
                                         temperature=job.temperature, rng=rng,
                                         max_repeats=self.max_repeats)
            if self._is_silence(result):
                seek += segment_size
                continue
            previous_seek = seek
            current, seek, single_ending = self._split(result, seek, segment_size, time_offset,
                                                       segment_duration)
            if self.min_frames < N_FRAMES and result.ended and \
                    previous_seek + segment_size >= job.content_frames:
                # A sized window held all the audio left and the model ended it: nothing
                # after its last timestamp is unheard. Decoding that tail again (as a 30 s
                # window's cut-off sentence is) made the model repeat its prompt, the text
                # before, a dozen times over the last 0.2 s of a 6 s Korean utterance.
                seek = job.content_frames
            if job.word_timestamps:
                self._words(current, cross, decode_language, job.task, segment_size,
                            time_offset, last_speech)
                end = last_word_end(current)
                if not single_ending and end is not None and end > time_offset:
                    seek = round(end * FRAMES_PER_SECOND)  # the next window starts there
                last_speech = end if end is not None else last_speech
            for segment in current:
                if segment["start"] == segment["end"] or segment["text"].strip() == "":
                    segment["text"] = ""
                    segment["tokens"] = []
                    if job.word_timestamps:
                        segment["words"] = []
            for segment in current:
                segment["id"] = len(segments)
                segment["seek"] = previous_seek
                segments.append(segment)
            all_tokens.extend(t for segment in current for t in segment["tokens"])
            if not self.condition_on_previous_text or result.temperature > 0.5:
                prompt_reset_since = len(all_tokens)
        text = tok.decode(all_tokens[len(initial_prompt_tokens):])
        return Transcription(text=text, language=language or "en", segments=segments,
                             duration=duration, language_probability=language_probability)

    def _words(self, segments: list[dict], cross: tuple[np.ndarray, np.ndarray],
               language: str | None, task: str, num_frames: int, time_offset: float,
               last_speech: float) -> None:
        """openai-whisper's add_word_timestamps for one window's segments."""
        if not segments:
            return
        tok = self.tokenizer
        text_tokens = [t for segment in segments for t in segment["tokens"] if t < tok.eot]
        alignment = align_words(self.model, tok, text_tokens, tok.sot_sequence(language, task),
                                cross, num_frames, language)
        add_word_timestamps(segments, alignment, time_offset, last_speech, tok.eot)

    def _is_silence(self, result: WindowResult) -> bool:
        if self.no_speech_threshold is None:
            return False
        skip = result.no_speech_prob > self.no_speech_threshold
        if self.logprob_threshold is not None and result.avg_logprob > self.logprob_threshold:
            skip = False
        return skip

    def _split(self, result: WindowResult, seek: int, segment_size: int, time_offset: float,
               segment_duration: float) -> tuple[list[dict], int, bool]:
        """Segments of one window from its timestamp tokens, the next seek position, and
        whether the window ended on a single timestamp."""
        tok = self.tokenizer
        tokens = result.tokens
        is_ts = [t >= tok.timestamp_begin for t in tokens]
        single_timestamp_ending = is_ts[-2:] == [False, True]
        consecutive = [i + 1 for i in range(len(tokens) - 1) if is_ts[i] and is_ts[i + 1]]
        segments = []

        def segment(start: float, end: float, sliced: list[int]) -> dict:
            return {"start": start, "end": end,
                    "text": tok.decode([t for t in sliced if t < tok.eot]),
                    "tokens": list(sliced), "temperature": result.temperature,
                    "avg_logprob": result.avg_logprob,
                    "compression_ratio": result.compression_ratio,
                    "no_speech_prob": result.no_speech_prob}

        if consecutive:
            slices = list(consecutive)
            if single_timestamp_ending:
                slices.append(len(tokens))
            last_slice = 0
            for current_slice in slices:
                sliced = tokens[last_slice:current_slice]
                start_pos = sliced[0] - tok.timestamp_begin
                end_pos = sliced[-1] - tok.timestamp_begin
                segments.append(segment(time_offset + start_pos * self.time_precision,
                                        time_offset + end_pos * self.time_precision, sliced))
                last_slice = current_slice
            if single_timestamp_ending:
                seek += segment_size
            else:
                seek += (tokens[last_slice - 1] - tok.timestamp_begin) * self.input_stride
        else:
            duration = segment_duration
            timestamps = [t for t in tokens if t >= tok.timestamp_begin]
            if timestamps and timestamps[-1] != tok.timestamp_begin:
                duration = (timestamps[-1] - tok.timestamp_begin) * self.time_precision
            segments.append(segment(time_offset, time_offset + duration, tokens))
            seek += segment_size
        return segments, seek, single_timestamp_ending


