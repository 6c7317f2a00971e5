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

from export.errors import ExportError
from export.repository import ModelRepository
from orchestrator.errors import InvalidRequest

log = logging.getLogger(__name__)

OPENAI_VOICES = frozenset({"alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx",
                           "sage", "shimmer", "verse", "marin", "cedar"})
"""OpenAI's voice names: they mean DEFAULT_VOICE, so code written for OpenAI runs as is."""


def served_voice(name: str | None) -> str | None:
    """The voice to ask the model for: None (its default) for no name or an OpenAI name."""
    name = (name or "").strip()
    return None if not name or name.lower() in OPENAI_VOICES else name


def base_language(language: str) -> str:
    """pt-BR -> pt: the STT models know languages, not regions."""
    return re.split(r"[-_]", language.strip())[0].lower()


class ModelCatalogue:
    """What the repository's versions offer; re-read when a version appears or goes."""

    def __init__(self, repository: str | Path | None,
                 served_version: Callable[[str], str] = lambda _model: "") -> None:
        root = Path(repository) if repository else None
        self.repository = ModelRepository(root) if root is not None and root.is_dir() else None
        self._served_version = served_version
        self._cache: dict[str, tuple[object, frozenset[str] | None]] = {}

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

    def _cached(self, model: str, read: Callable[[list[int]], frozenset[str] | None]
                ) -> frozenset[str] | None:
        if self.repository is None:
            return None
        versions = self.repository.versions(model)
        key = (tuple(versions), self._served_version(model))
        hit = self._cache.get(model)
        if hit is not None and hit[0] == key:
            return hit[1]
        try:
            value = read(versions) if versions else None
        except (OSError, ValueError, KeyError, TypeError, ExportError) as exc:
            log.warning("cannot read what %s offers from the repository: %s", model, exc)
            value = None
        self._cache[model] = (key, value)
        return value

    def _read_voices(self, versions: list[int]) -> frozenset[str] | None:
        assert self.repository is not None
        pinned = self._served_version("tts")
        version = int(pinned) if pinned.isdigit() else versions[-1]
        voices_file = self.repository.model_dir("tts") / str(version) / "voices.json"
        entries = json.loads(voices_file.read_text(encoding="utf-8"))["voices"]
        return frozenset(entry["name"] for entry in entries)

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
