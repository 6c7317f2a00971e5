"""Piper voices: ``<name>.onnx`` + ``<name>.onnx.json``, validated into a voices.json entry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from export.errors import SourceError

REQUIRED_IDS = ("^", "$", "_")
SUPPORTED_PHONEME_TYPES = ("espeak",)


def find_voice(path: Path) -> tuple[Path, Path]:
    """(model.onnx, model.onnx.json) from a file or a directory holding exactly one voice."""
    if path.is_dir():
        models = sorted(path.glob("*.onnx"))
        if len(models) != 1:
            raise SourceError(f"{path}: expected one Piper voice (*.onnx), found "
                              f"{len(models)}; pass the .onnx file")
        path = models[0]
    if path.suffix != ".onnx" or not path.is_file():
        raise SourceError(f"{path}: not a Piper voice (.onnx file)")
    config = path.with_name(path.name + ".json")
    if not config.is_file():
        raise SourceError(f"{path}: its config {config.name} is missing beside it")
    return path, config


def voice_entry(model: Path, config_path: Path) -> dict[str, Any]:
    """The voices.json entry for a Piper voice; raises SourceError on an unusable config."""
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SourceError(f"{config_path}: unreadable voice config: {exc}") from exc
    name = model.name[:-len(".onnx")]
    phoneme_type = config.get("phoneme_type", "espeak")
    if phoneme_type not in SUPPORTED_PHONEME_TYPES:
        raise SourceError(f"{name}: phoneme_type {phoneme_type!r} is not supported (only "
                          f"{', '.join(SUPPORTED_PHONEME_TYPES)})")
    id_map = config.get("phoneme_id_map")
    if not isinstance(id_map, dict) or any(k not in id_map for k in REQUIRED_IDS):
        raise SourceError(f"{name}: phoneme_id_map must map ^, $ and _ (BOS, EOS, PAD)")
    if not all(isinstance(v, list) and all(isinstance(i, int) for i in v)
               for v in id_map.values()):
        raise SourceError(f"{name}: phoneme_id_map values must be lists of ids")
    num_symbols = int(config.get("num_symbols", 0))
    top = max(i for v in id_map.values() for i in v)
    if num_symbols and top >= num_symbols:
        raise SourceError(f"{name}: phoneme id {top} >= num_symbols {num_symbols}")
    try:
        sample_rate = int(config["audio"]["sample_rate"])
        espeak_voice = str(config["espeak"]["voice"])
    except (KeyError, TypeError, ValueError) as exc:
        raise SourceError(f"{name}: config lacks audio.sample_rate or espeak.voice") from exc
    inference = config.get("inference", {})
    language = config.get("language", {}).get("code") or espeak_voice
    num_speakers = int(config.get("num_speakers", 1))
    return {
        "name": name, "kind": "piper", "model": model.name, "language": language,
        "phoneme_type": phoneme_type, "espeak_voice": espeak_voice, "sample_rate": sample_rate,
        "num_speakers": num_speakers, "speakers": dict(config.get("speaker_id_map") or {}),
        "noise_scale": float(inference.get("noise_scale", 0.667)),
        "length_scale": float(inference.get("length_scale", 1.0)),
        "noise_w": float(inference.get("noise_w", 0.8)),
        "phoneme_id_map": id_map,
        "vowel_clusters": [list(c) for c in config.get("vowel_clusters", [])],
    }
