"""Text -> audio chunks, sentence by sentence, for every voice of a version.

Shared by the Triton model (``model.py``) and the export parity check, so the served
path is the checked path. Bad requests raise :class:`BadRequest` with a message meant
for the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .engines import OpenVinoSession
from .normalize import language_of, normalize
from .sentences import split_sentences
from .voices import Voice, load_catalog, open_voices

MIN_SPEED, MAX_SPEED = 0.25, 4.0
log = logging.getLogger("tts")


class BadRequest(ValueError):
    """The request cannot be served as asked (unknown voice, text too long, bad speed…)."""


@dataclass
class Chunk:
    sentence: str
    """The sentence this chunk begins; empty for the later pieces of a sentence."""
    audio: np.ndarray
    sample_rate: int
    dropped: list[str]
    """Symbols of the sentence the voice cannot say (dropped, logged by the caller)."""


@dataclass
class Plan:
    voice: Voice
    speaker: int | None
    language: str
    noise_scale: float
    length_scale: float
    noise_w: float
    sentences: list[str]


class Synthesizer:
    def __init__(self, directory: Path, *, intra_op_threads: int = 0,
                 max_text_chars: int = 4096, providers: list | None = None,
                 kokoro_engine: str = "onnxruntime") -> None:
        """``kokoro_engine``: what runs Kokoro's decoder, ``onnxruntime`` or ``openvino``
        (:func:`.engines.resolve` turns the model's setting into one of them)."""
        self.default, configs = load_catalog(directory)
        self.voices: dict[str, Voice] = open_voices(configs, directory, intra_op_threads,
                                                    providers, kokoro_engine)
        precisions = sorted({v.decoder.precision for v in self.voices.values()
                             if isinstance(getattr(v, "decoder", None), OpenVinoSession)})
        self.kokoro_engine = f"{kokoro_engine} ({', '.join(precisions)})" if precisions \
            else kokoro_engine
        """What runs Kokoro's decoders, for the log: with OpenVINO, its precision."""
        if self.default not in self.voices:
            raise ValueError(f"voices.json default {self.default!r} is not one of its voices")
        self.max_text_chars = max_text_chars

    def plan(self, text: str, *, voice: str = "", language: str = "", speed: float = 1.0,
             noise_scale: float | None = None, noise_w: float | None = None) -> Plan:
        """Validate a request and split its text; raises BadRequest."""
        if not text or not text.strip():
            raise BadRequest("text is empty")
        if len(text) > self.max_text_chars:
            raise BadRequest(f"text is {len(text)} characters long; the limit is "
                             f"{self.max_text_chars}")
        if not np.isfinite(speed) or not MIN_SPEED <= speed <= MAX_SPEED:
            raise BadRequest(f"speed {speed} is outside {MIN_SPEED}..{MAX_SPEED}")
        for name, value in (("noise_scale", noise_scale), ("noise_w", noise_w)):
            if value is not None and (not np.isfinite(value) or not 0.0 <= value <= 2.0):
                raise BadRequest(f"{name} {value} is outside 0..2")
        chosen, speaker = self.resolve(voice)
        config = chosen.config
        if config.kind == "kokoro":
            for name, value in (("noise_scale", noise_scale), ("noise_w", noise_w)):
                if value is not None:
                    raise BadRequest(f"{name}: voice {config.name!r} is a Kokoro voice, "
                                     "which has no sampling noise (it always says a text "
                                     "the same way); leave it out")
        if not language:
            language = language_of(text, default=config.language.split("_")[0].split("-")[0])
        return Plan(voice=chosen, speaker=speaker, language=language,
                    noise_scale=config.noise_scale if noise_scale is None else noise_scale,
                    length_scale=config.length_scale / speed,
                    noise_w=config.noise_w if noise_w is None else noise_w,
                    sentences=split_sentences(text))

    def resolve(self, name: str) -> tuple[Voice, int | None]:
        """``""`` (default voice), ``"name"`` or ``"name#speaker"`` (name or number)."""
        base, _, speaker_name = (name or self.default).partition("#")
        voice = self.voices.get(base or self.default)
        if voice is None:
            raise BadRequest(f"unknown voice {base!r}; this version has: "
                             f"{', '.join(sorted(self.voices))}")
        config = voice.config
        if not speaker_name:
            return voice, (0 if config.num_speakers > 1 else None)
        if config.num_speakers <= 1:
            raise BadRequest(f"voice {base!r} has a single speaker; drop '#{speaker_name}'")
        if speaker_name in config.speakers:
            return voice, int(config.speakers[speaker_name])
        if speaker_name.isdigit() and int(speaker_name) < config.num_speakers:
            return voice, int(speaker_name)
        raise BadRequest(f"voice {base!r} has no speaker {speaker_name!r} (0.."
                         f"{config.num_speakers - 1} or one of {sorted(config.speakers)[:10]})")

    def chunks(self, plan: Plan) -> Iterator[Chunk]:
        """Each sentence's audio, in one chunk or in pieces as its voice decodes them
        (the first piece names the sentence), each produced only when asked for."""
        config = plan.voice.config
        for sentence in plan.sentences:
            ids, dropped = plan.voice.text_ids(normalize(sentence, plan.language))
            if not ids:
                log.warning("tts: nothing to say in %r with voice %s", sentence, config.name)
                continue
            pieces = plan.voice.stream(ids, noise_scale=plan.noise_scale,
                                       length_scale=plan.length_scale, noise_w=plan.noise_w,
                                       speaker=plan.speaker)
            for index, audio in enumerate(pieces):
                yield Chunk(sentence if index == 0 else "", np.clip(audio, -1.0, 1.0),
                            config.sample_rate, dropped if index == 0 else [])
