"""Reading and checking one ``stt`` request's inputs, for every architecture's model.py.

Imported inside Triton's python stub (numpy only; ``pb_utils`` is passed in, since
``triton_python_backend_utils`` exists only there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from export.specs.stt import (
    AUDIO,
    LANGUAGE,
    PROMPT,
    SAMPLE_RATE,
    TASK,
    TEMPERATURE,
    WORD_TIMESTAMPS,
)


class BadRequest(ValueError):
    """The request's inputs are invalid (TritonError INVALID_ARG)."""


@dataclass(frozen=True, slots=True)
class SttRequest:
    audio: np.ndarray
    """float32 samples at 16 kHz, finite, within the length limit."""
    language: str | None
    task: str
    prompt: str | None
    temperature: float
    word_timestamps: bool = False


def text_input(pb_utils: Any, request: Any, tensor: Any) -> str | None:
    value = pb_utils.get_input_tensor_by_name(request, tensor.name)
    if value is None:
        return None
    array = value.as_numpy().reshape(-1)
    if array.size == 0:
        return None
    item = array[0]
    try:
        text = item.decode("utf-8") if isinstance(item, bytes) else str(item)
    except UnicodeDecodeError:
        raise BadRequest(f"{tensor.name} is not valid UTF-8") from None
    return text or None


def read_request(pb_utils: Any, request: Any, max_audio_seconds: float) -> SttRequest:
    tensor = pb_utils.get_input_tensor_by_name(request, AUDIO.name)
    if tensor is None:
        raise BadRequest(f"missing input {AUDIO.name}")
    audio = tensor.as_numpy()
    if audio.dtype != np.float32:
        raise BadRequest(f"{AUDIO.name} must be FP32")
    audio = audio.reshape(-1)
    if not np.all(np.isfinite(audio)):
        raise BadRequest(f"{AUDIO.name} contains NaN or infinite samples")
    seconds = audio.size / SAMPLE_RATE
    if seconds > max_audio_seconds:
        raise BadRequest(f"audio is {seconds:.1f} s long; the limit is "
                         f"{max_audio_seconds:.0f} s")
    temperature = 0.0
    t = pb_utils.get_input_tensor_by_name(request, TEMPERATURE.name)
    if t is not None and t.as_numpy().size:
        temperature = float(t.as_numpy().reshape(-1)[0])
        if not np.isfinite(temperature) or not 0.0 <= temperature <= 1.0:
            raise BadRequest("temperature must be between 0 and 1")
    words = pb_utils.get_input_tensor_by_name(request, WORD_TIMESTAMPS.name)
    return SttRequest(audio=audio, language=text_input(pb_utils, request, LANGUAGE),
                      task=text_input(pb_utils, request, TASK) or "transcribe",
                      prompt=text_input(pb_utils, request, PROMPT), temperature=temperature,
                      word_timestamps=words is not None and bool(words.as_numpy().any()))
