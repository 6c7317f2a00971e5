"""The voices and languages the served models offer, read from the model repository, so a
session's voice or language is checked when it is set, not when a turn first fails.

Voices: the served ``tts`` version's manifest (one entry per exported voice). Languages:
each ``stt`` version's tokenizer (Whisper: its language tokens and English names) or
English (Moonshine and ``.en`` Whisper checkpoints); a request that names a language is
routed to a version that knows it (``SpeechToText.route``). Without a repository here
(Triton elsewhere, models this process cannot see) nothing is refused up front and the
models answer for themselves.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from export.errors import ExportError
from export.repository import ModelRepository
from export.tts.runtime.normalize import HANGUL
from orchestrator.errors import InvalidRequest, VoiceCannotSpeak

log = logging.getLogger(__name__)

OPENAI_VOICES = frozenset({"alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx",
                           "sage", "shimmer", "verse", "marin", "cedar"})
"""OpenAI's voice names: they mean DEFAULT_VOICE, so code written for OpenAI runs as is."""


def served_voice(name: str | None) -> str | None:
    """The voice to ask the model for: None (its default) for no name or an OpenAI name."""
    name = (name or "").strip()
    return None if not name or name.lower() in OPENAI_VOICES else name


LANGUAGE_NAMES = {"ko": "Korean", "en": "English"}


def text_language(text: str, language: str | None = None) -> str | None:
    """The language ``text`` is to be spoken in: ``language`` when given, ``ko`` when at
    least a third of its letters are Hangul, else None (unknown: nothing is refused). A
    Korean word inside English text does not make it Korean."""
    if language:
        return base_language(language)
    letters = sum(c.isalpha() for c in text)
    hangul = len(HANGUL.findall(text))
    return "ko" if letters and hangul * 3 >= letters else None


def base_language(language: str) -> str:
    """pt-BR -> pt: the STT models know languages, not regions."""
    return re.split(r"[-_]", language.strip())[0].lower()


class ModelCatalogue:
    """What the repository's versions offer; re-read when a version appears or goes."""

    def __init__(self, repository: str | Path | None,
                 served_version: Callable[[str], str] = lambda _model: "",
                 default_voice: str = "") -> None:
        root = Path(repository) if repository else None
        self.default_voice = default_voice
        """DEFAULT_VOICE: what a request naming no voice is synthesised with."""
        self.repository = ModelRepository(root) if root is not None and root.is_dir() else None
        self._served_version = served_version
        self._cache: dict[str, tuple[object, Any]] = {}

    # --- voices ----------------------------------------------------------------------

    def voices(self) -> frozenset[str] | None:
        """Voice names of the served tts version; None when they cannot be known here."""
        return self._cached("tts", self._read_voices)

    def check_voice(self, voice: str | None, param: str = "voice") -> None:
        name = served_voice(voice)
        if name is None:
            return
        voices = self.voices()
        if voices is not None and name.partition("#")[0] not in voices:
            raise InvalidRequest(f"unknown voice {name!r}; this server has: "
                                 f"{', '.join(sorted(voices)) or 'none'} (or an OpenAI "
                                 "voice name, which means the default voice)", param=param)

    def voice_languages(self, voice: str | None) -> frozenset[str] | None:
        """The base languages ``voice`` speaks (None: the default voice: DEFAULT_VOICE when
        the served version has it, else the version's own), or None if unknown."""
        languages = self._voice_languages()
        if not languages:
            return None
        return languages.get(self.effective_voice(voice).partition("#")[0]) or None

    def effective_voice(self, voice: str | None) -> str:
        """The voice a request for ``voice`` is synthesised with: its name, else
        DEFAULT_VOICE if the served version has it, else the version's default ("" when
        the repository cannot be read here)."""
        name = served_voice(voice)
        if name:
            return name
        served = self.voices()
        if self.default_voice and (served is None or
                                   self.default_voice.partition("#")[0] in served):
            return self.default_voice
        return str(self._cached("tts", self._read_default_voice, entry="default") or "")

    def check_speaks(self, voice: str | None, text: str, language: str | None = None,
                     param: str = "voice") -> None:
        """Refuse text in a language the voice cannot pronounce."""
        wanted = text_language(text, language)
        speaks = self.voice_languages(voice)
        if wanted is None or speaks is None or wanted in speaks:
            return
        name = self.effective_voice(voice) or "the default voice"
        able = self.voices_speaking(wanted)
        spoken = ", ".join(LANGUAGE_NAMES.get(code, code) for code in sorted(speaks))
        raise VoiceCannotSpeak(
            f"voice {name!r} speaks {spoken}; "
            f"{LANGUAGE_NAMES.get(wanted, wanted)} text through it is unintelligible. "
            + (f"Voices that speak it: {', '.join(able)}" if able else
               "This server has no voice for it (the Korean profile, `make run LANGUAGE=ko`, "
               "serves Korean voices: docs/korean.md)"),
            param=param)

    def check_noise(self, voice: str | None, **noise: float | None) -> None:
        """Refuse VITS sampling noise (``noise_scale``, ``noise_w``) for a voice that has
        none (Kokoro), naming the parameter, rather than accept and ignore it."""
        kinds = self._cached("tts", self._read_voice_kinds, entry="kinds") or {}
        name = self.effective_voice(voice).partition("#")[0]
        if kinds.get(name) != "kokoro":
            return
        for param, value in noise.items():
            if value is not None:
                raise InvalidRequest(f"{param}: voice {name!r} is a Kokoro voice, which has "
                                     "no sampling noise (it says a text the same way every "
                                     "time); leave it out", param=param)

    def listing(self) -> list[tuple[str, list[str]]]:
        """(voice, the base languages it speaks) of the served tts version, by name; empty
        when the repository cannot be read here."""
        languages = self._voice_languages()
        return [(name, sorted(code for code in languages[name] if code))
                for name in sorted(languages)]

    def voices_speaking(self, language: str) -> list[str]:
        return sorted(name for name, spoken in self._voice_languages().items()
                      if language in spoken)

    def _voice_languages(self) -> dict[str, frozenset[str]]:
        """Voice name -> base languages it speaks, of the served tts version ({} when
        unknown)."""
        return self._cached("tts", self._read_voice_languages, entry="voice-languages") or {}

    # --- languages -------------------------------------------------------------------

    def languages(self) -> frozenset[str] | None:
        """Language codes and English names some stt version transcribes; None: unknown."""
        return self._cached("stt", self._read_languages)

    def check_language(self, language: str | None, param: str = "language") -> None:
        if not language:
            return
        languages = self.languages()
        if languages is not None and base_language(language) not in languages \
                and language.strip().lower() not in languages:
            codes = sorted(code for code in languages if len(code) <= 3)
            shown = ", ".join(codes[:12]) + (f" … ({len(codes)} in all)" if len(codes) > 12
                                             else "")
            raise InvalidRequest(f"unsupported language {language!r}; the served speech "
                                 f"models know: {shown}", param=param)

    # --- reading the repository ------------------------------------------------------

    def _cached(self, model: str, read: Callable[[list[int]], Any], entry: str = "") -> Any:
        """``read(versions)`` of ``model``, re-read when its versions or the served one
        change; ``entry`` names a second reading of the same model."""
        if self.repository is None:
            return None
        versions = self.repository.versions(model)
        key = (tuple(versions), self._served_version(model))
        name = f"{model}:{entry}"
        hit = self._cache.get(name)
        if hit is not None and hit[0] == key:
            return hit[1]
        try:
            value = read(versions) if versions else None
        except (OSError, ValueError, KeyError, TypeError, ExportError) as exc:
            log.warning("cannot read what %s offers from the repository: %s", model, exc)
            value = None
        self._cache[name] = (key, value)
        return value

    def _voices_json(self, versions: list[int]) -> dict:
        assert self.repository is not None
        pinned = self._served_version("tts")
        version = int(pinned) if pinned.isdigit() else versions[-1]
        voices_file = self.repository.model_dir("tts") / str(version) / "voices.json"
        return json.loads(voices_file.read_text(encoding="utf-8"))

    def _read_voices(self, versions: list[int]) -> frozenset[str] | None:
        return frozenset(entry["name"] for entry in self._voices_json(versions)["voices"])

    def _read_voice_languages(self, versions: list[int]) -> dict[str, frozenset[str]]:
        """Voice name -> base languages (``languages`` of a voice that speaks several,
        e.g. Kokoro's Korean voices also read English words; else ``language``)."""
        return {entry["name"]: frozenset(base_language(code) for code in
                                         entry.get("languages") or [entry.get("language")
                                                                    or ""])
                for entry in self._voices_json(versions)["voices"]}

    def _read_voice_kinds(self, versions: list[int]) -> dict[str, str]:
        return {entry["name"]: entry.get("kind", "piper")
                for entry in self._voices_json(versions)["voices"]}

    def _read_default_voice(self, versions: list[int]) -> str:
        data = self._voices_json(versions)
        return data.get("default") or data["voices"][0]["name"]

    def _read_languages(self, versions: list[int]) -> frozenset[str] | None:
        assert self.repository is not None
        known: set[str] = {"en", "english"}
        for version in versions:
            if not self.repository.manifest("stt", version).extra.get("multilingual", True):
                continue
            tokenizer = self.repository.model_dir("stt") / str(version) / "tokenizer.json"
            meta = json.loads(tokenizer.read_text(encoding="utf-8"))
            if "languages" in meta:
                known.update(meta["languages"])
                known.update(alias for alias, code in meta.get("language_aliases", {}).items()
                             if code in meta["languages"])
        return frozenset(known)
