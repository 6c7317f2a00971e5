"""Korean speech for tests, spoken in process by Kokoro-82M (export.stt.testspeech's
speaker, which also scores stt versions at export). ``korean_speaker(directory)`` returns
``say(text, rate) -> float32``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

VOICE = "ko-kumo"


def korean_speaker(directory: Path) -> Callable[..., np.ndarray]:
    from export.errors import SourceError
    from export.stt import testspeech
    from orchestrator.realtime.audio import resample

    try:
        speak = testspeech.kokoro_speaker(VOICE, directory)
    except SourceError as exc:
        pytest.fail(f"{exc} (make setup installs the Kokoro packages)")

    def say(text: str, rate: int = 16000) -> np.ndarray:
        """``text`` spoken, ending on the voice (without the sentence pause), at ``rate``."""
        audio = speak(text)
        return audio if rate == testspeech.SAMPLE_RATE else \
            resample(audio, testspeech.SAMPLE_RATE, rate)
    return say
