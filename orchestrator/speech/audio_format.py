"""The audio format the speech models take: one place for the fact, used by speech,
realtime and the upload paths alike."""

from __future__ import annotations

from export.specs.stt import SAMPLE_RATE

MODEL_RATE: int = SAMPLE_RATE
"""Samples per second of the audio that speech-to-text, the VAD and Smart Turn read
(16 kHz mono float32): what every input is resampled to."""
