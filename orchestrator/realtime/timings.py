"""The stage timings of one reply: one struct for the ``response.done`` event, the stored
turn's columns, metrics and the upload's answer."""

from __future__ import annotations

from typing import Any

import msgspec

STORED = ("stt_ms", "llm_first_token_ms", "llm_total_ms", "tts_first_audio_ms", "tts_total_ms",
          "voice_to_voice_ms")
"""The timings a stored turn keeps (its columns of the same names)."""
REPLY_STORED = STORED[1:]
"""Those of an assistant turn (``stt_ms`` is its user turn's)."""


class Timings(msgspec.Struct, omit_defaults=True):
    """Milliseconds per stage of one reply (absent when a stage did not run), and the
    prompt tokens its first token waited for.

    ``turn_detection_ms``: from the user's last voiced audio to the end of the turn
    (the silence the turn detector waited); ``stt_ms``: the final transcription (it may
    have run speculatively, before the turn ended); ``voice_to_voice_ms``: from the
    user's last voiced audio to the first reply audio sent. ``llm_*`` and ``tts_*``
    count from their own stage's start."""

    turn_detection_ms: float | None = None
    stt_ms: float | None = None
    stt_tail_ms: float | None = None
    """Audio at the end of the turn that no partial transcript had heard (trailing silence
    included): what the final transcription was the first to decode."""
    prompt_ms: float | None = None
    """Building the reply's prompt: the stored history read, memories recalled."""
    llm_start_ms: float | None = None
    """From the user's last voiced audio to the LLM request (the prompt is built by then)."""
    first_chunk_ms: float | None = None
    """From the user's last voiced audio to the first text chunk handed to speech."""
    llm_first_token_ms: float | None = None
    llm_total_ms: float | None = None
    tts_first_audio_ms: float | None = None
    tts_total_ms: float | None = None
    voice_to_voice_ms: float | None = None
    llm_cached_tokens: int | None = None
    """Prompt tokens the LLM found in its prefix cache: earlier turns, and what a prefill
    read while the user was still speaking."""
    llm_new_tokens: int | None = None
    """Prompt tokens the LLM read after the request (the first token waited for these)."""

    def stored(self, *names: str) -> dict[str, Any]:
        """The stored turn's columns among ``names`` (all of :data:`STORED` by default)."""
        return {name: getattr(self, name) for name in names or STORED}
