"""Voices of one repository version: ``voices.json`` entries, text to ids, ids to audio.

``voices.json``::

    {"default": "en_US-joe-medium",
     "voices": [{"name": ..., "model": "<file>.onnx", "kind": "piper" | "vits" | "kokoro",
                 "language": "en", "phoneme_type": "espeak" | "characters" | "korean",
                 "espeak_voice": "en-us", "sample_rate": 22050, "num_speakers": 1,
                 "speakers": {"name": id}, "noise_scale": .., "length_scale": ..,
                 "noise_w": .., "phoneme_id_map": {symbol: [ids]},
                 "characters": {"add_blank": true, "lowercase": true, "unicode_form": "NFC"}}]}

Piper and VITS graphs have Piper's signature: ``input`` int64 [1, T], ``input_lengths``
int64 [1], ``scales`` float32 [3] = (noise_scale, length_scale, noise_w), and ``sid``
int64 [1] for multi-speaker voices; output ``output`` float32 [1, 1, 1, samples] (VITS
exports are wrapped to match), so one code path serves them. Kokoro voices (``kind``
"kokoro", :mod:`.kokoro`) add ``style`` (their row in ``styles_file``), ``graph`` (fp32 or
int8), ``max_tokens``, ``pause_s`` and ``languages``; all of them share one graph.
"""

from __future__ import annotations

import json
import logging
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import espeak

VOICES_FILE = "voices.json"
BOS, EOS, PAD = "^", "$", "_"
log = logging.getLogger("tts")


@dataclass
class VoiceConfig:
    name: str
    model: str
    language: str
    phoneme_type: str
    sample_rate: int
    phoneme_id_map: dict[str, list[int]]
    kind: str = "piper"
    espeak_voice: str = ""
    num_speakers: int = 1
    speakers: dict[str, int] = field(default_factory=dict)
    noise_scale: float = 0.667
    length_scale: float = 1.0
    noise_w: float = 0.8
    vowel_clusters: list[list[str]] = field(default_factory=list)
    characters: dict[str, Any] = field(default_factory=dict)
    languages: list[str] = field(default_factory=list)
    """Every language the voice speaks (empty: ``language`` only)."""
    style: str = ""
    """Kokoro: the voice's style table in ``styles_file``."""
    styles_file: str = ""
    graph: str = "fp32"
    """Kokoro: fp32 (dequantised, any provider) or int8 (CPU only)."""
    max_tokens: int = 510
    pause_s: float = 0.0
    """Silence after each sentence (Kokoro's audio is trimmed to the voice)."""
    stream: dict[str, Any] = field(default_factory=dict)
    """The graph cut before its decoder (``front``, ``decoder`` files, ``hop``,
    ``context_frames``, ``first_frames``; Piper / VITS: export/tts/decoder_split.py;
    Kokoro also ``statistics`` and ``edge_frames``: export/tts/kokoro_stream.py), so a
    sentence streams in pieces; empty: the whole graph, one chunk per sentence."""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VoiceConfig:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def load_catalog(directory: Path) -> tuple[str, list[VoiceConfig]]:
    data = json.loads((directory / VOICES_FILE).read_text(encoding="utf-8"))
    voices = [VoiceConfig.from_json(v) for v in data["voices"]]
    return data.get("default") or voices[0].name, voices


def open_session(path: Path, intra_op_threads: int = 0, providers: list | None = None):  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    from export.providers import session_options

    return ort.InferenceSession(str(path), session_options(intra_op_threads),
                                providers=providers or ["CPUExecutionProvider"])


def open_voices(configs: list[VoiceConfig], directory: Path, intra_op_threads: int = 0,
                providers: list | None = None, kokoro_engine: str = "onnxruntime"
                ) -> dict[str, Any]:
    """Every voice of a version by name; voices that share a graph share its session.
    ``kokoro_engine`` (``onnxruntime`` or ``openvino``, see :mod:`.engines`) runs the
    decoder of Kokoro voices decoded in pieces."""
    from .engines import OpenVinoSession
    from .kokoro import KokoroVoice, load_styles

    sessions: dict[str, Any] = {}
    styles: dict[str, dict[str, np.ndarray]] = {}
    voices: dict[str, Any] = {}

    def session(file: str, chosen: list | None, engine: str = "onnxruntime") -> Any:
        if file not in sessions:
            sessions[file] = OpenVinoSession(directory / file, intra_op_threads) \
                if engine == "openvino" else open_session(directory / file, intra_op_threads,
                                                          chosen)
        return sessions[file]

    def table(file: str) -> dict[str, np.ndarray]:
        if file not in styles:
            styles[file] = load_styles(directory / file)
        return styles[file]

    for config in configs:
        if config.kind != "kokoro":
            voices[config.name] = Voice(config, directory, intra_op_threads, providers)
            continue
        # The int8 graph's ConvInteger / DynamicQuantizeLSTM exist on the CPU provider only.
        chosen = ["CPUExecutionProvider"] if config.graph == "int8" else providers
        decoder = statistics = None
        if config.stream:  # cut: a decoder and each voice's calibrated statistics
            decoder = session(config.stream["decoder"], chosen, kokoro_engine)
            models = table(config.stream["statistics"])
            statistics = [models[key] for key in sorted(models)
                          if key.startswith(f"{config.style}.")]
        voices[config.name] = KokoroVoice(config, session(config.model, chosen),
                                          table(config.styles_file)[config.style], decoder,
                                          statistics)
    return voices


class Voice:
    """One Piper or VITS voice: its config, its ONNX session, text -> ids -> audio."""

    def __init__(self, config: VoiceConfig, directory: Path, intra_op_threads: int = 0,
                 providers: list | None = None) -> None:
        self.config = config
        if config.stream:
            self.session = open_session(directory / config.stream["front"], intra_op_threads,
                                        providers)
            self.decoder = open_session(directory / config.stream["decoder"],
                                        intra_op_threads, providers)
            self.decoder_input = self.decoder.get_inputs()[0].name
        else:
            self.session = open_session(directory / config.model, intra_op_threads, providers)
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.clusters = {tuple(c) for c in config.vowel_clusters}
        # MMS voices trained on romanised text (is_uroman): load the romaniser now, not on
        # the first request (it takes seconds).
        self.romanizer = _uroman() if config.characters.get("uroman") else None

    # --- text -> ids --------------------------------------------------------------------

    def phonemes(self, text: str) -> list[list[str]]:
        """Phonemes (espeak voices) or characters, grouped as the phonemiser groups them."""
        if self.config.phoneme_type == "espeak":
            sentences = espeak.phonemize(text, self.config.espeak_voice)
            return [self._merge_clusters(s) for s in sentences] if self.clusters else sentences
        return [self._characters(text)]

    def phoneme_ids(self, phonemes: list[str]) -> tuple[list[int], list[str]]:
        """Piper's ``phonemes_to_ids`` (espeak) or the VITS tokenizer's ids (characters);
        also the symbols the voice cannot say, which are dropped."""
        id_map = self.config.phoneme_id_map
        dropped = [p for p in phonemes if p not in id_map]
        kept = [p for p in phonemes if p in id_map]
        if self.config.phoneme_type == "espeak":
            ids = list(id_map[BOS]) + list(id_map[PAD])
            for p in kept:
                ids += list(id_map[p]) + list(id_map[PAD])
            return ids + list(id_map[EOS]), dropped
        while kept and kept[0] == " ":
            kept.pop(0)
        while kept and kept[-1] == " ":
            kept.pop()
        ids = [id_map[p][0] for p in kept]
        if self.config.characters.get("add_blank", True):
            pad = int(self.config.characters.get("pad_id", 0))
            spread = [pad] * (2 * len(ids) + 1)
            spread[1::2] = ids
            ids = spread
        return ids, dropped

    def text_ids(self, text: str) -> tuple[list[int], list[str]]:
        """ids of one sentence (espeak sentences inside it joined by a space)."""
        groups = self.phonemes(text)
        joined: list[str] = []
        for group in groups:
            if joined and group:
                joined.append(" ")
            joined.extend(group)
        if not [p for p in joined if p.strip()]:
            return [], []
        ids, dropped = self.phoneme_ids(joined)
        if self.config.phoneme_type != "espeak" and not any(
                p in self.config.phoneme_id_map for p in joined):
            return [], dropped
        return ids, dropped

    def _characters(self, text: str) -> list[str]:
        options = self.config.characters
        text = unicodedata.normalize(options.get("unicode_form", "NFC"), text)
        if options.get("lowercase", True):
            text = text.lower()
        if self.romanizer is not None:
            text = self.romanizer.romanize_string(text)  # after lowercasing, as VitsTokenizer
        return list(text.strip())

    def _merge_clusters(self, phones: list[str]) -> list[str]:
        longest = max(len(c) for c in self.clusters)
        out, i = [], 0
        while i < len(phones):
            for n in range(min(longest, len(phones) - i), 1, -1):
                if tuple(phones[i:i + n]) in self.clusters:
                    out.append("".join(phones[i:i + n]))
                    i += n
                    break
            else:
                out.append(phones[i])
                i += 1
        return out

    # --- ids -> audio -------------------------------------------------------------------

    def run(self, ids: list[int], *, noise_scale: float, length_scale: float, noise_w: float,
            speaker: int | None = None) -> np.ndarray:
        """Raw model output for one id sequence (what Piper's ``phoneme_ids_to_audio`` gives)."""
        return np.concatenate(list(self.stream(ids, noise_scale=noise_scale,
                                               length_scale=length_scale, noise_w=noise_w,
                                               speaker=speaker)))

    def stream(self, ids: list[int], *, noise_scale: float, length_scale: float,
               noise_w: float, speaker: int | None = None) -> Iterator[np.ndarray]:
        """The audio of one id sequence in pieces, each as soon as it is decoded; joined,
        they are the whole graph's output (one piece when the voice is not cut)."""
        feeds: dict[str, np.ndarray] = {
            "input": np.asarray([ids], dtype=np.int64),
            "input_lengths": np.asarray([len(ids)], dtype=np.int64),
            "scales": np.asarray([noise_scale, length_scale, noise_w], dtype=np.float32),
        }
        if "sid" in self.input_names:
            feeds["sid"] = np.asarray([speaker or 0], dtype=np.int64)
        if not self.config.stream:
            yield self.session.run(None, feeds)[0].reshape(-1).astype(np.float32)
            return
        latent = self.session.run(None, feeds)[0]
        cut = self.config.stream
        hop, context, frames = int(cut["hop"]), int(cut["context_frames"]), latent.shape[-1]
        start, size = 0, int(cut["first_frames"])
        while start < frames:
            # Doubling pieces: the first one short (first audio), each next one decoded
            # while the ones before play (and few pieces, since each decodes its context
            # again).
            end = min(frames, start + size) if frames - start - size > size // 2 else frames
            lo, hi = max(0, start - context), min(frames, end + context)
            audio = self.decoder.run(None, {self.decoder_input: latent[:, :, lo:hi]})[0]
            yield audio.reshape(-1)[(start - lo) * hop:(end - lo) * hop].astype(np.float32)
            start, size = end, size * 2


_UROMAN = None


def _uroman():  # type: ignore[no-untyped-def]
    global _UROMAN
    if _UROMAN is None:
        try:
            import uroman
        except ImportError as exc:
            raise RuntimeError("this voice expects romanised text (is_uroman): install the "
                               "uroman package") from exc
        _UROMAN = uroman.Uroman()
    return _UROMAN
