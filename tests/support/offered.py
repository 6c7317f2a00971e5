"""A model repository holding only what ``ModelCatalogue`` reads (voices, languages)."""

from __future__ import annotations

import json
from pathlib import Path


def offered_repository(root: Path) -> Path:
    """A repository with what the catalogue reads: a tts version with two voices and a
    Whisper-style stt version knowing English and Korean (no weights: nothing is served)."""
    from export.repository import Manifest, ModelRepository

    repository = ModelRepository(root)
    tts = repository.model_dir("tts") / "1"
    tts.mkdir(parents=True)
    (tts / "voices.json").write_text(json.dumps({"default": "joe", "voices": [
        {"name": "joe", "language": "en_US"}, {"name": "kss", "language": "ko"}]}))
    (tts / "manifest.json").write_text(json.dumps(
        Manifest(model="tts", version=1, source={}).to_json()))
    stt = repository.model_dir("stt") / "1"
    stt.mkdir(parents=True)
    (stt / "tokenizer.json").write_text(json.dumps({
        "languages": {"en": 1, "ko": 2}, "language_aliases": {"korean": "ko"}}))
    (stt / "manifest.json").write_text(json.dumps(Manifest(
        model="stt", version=1, source={}, extra={"multilingual": True}).to_json()))
    return root
