"""Transcription sessions (OpenAI's ``session.type: "transcription"``): audio in, per turn
the VAD events and the transcript, each turn stored as a user turn; no reply, so neither
the LLM nor text-to-speech is needed.

The turn taking and the speech-to-text stage are the realtime session's own; this module
holds the rules that differ: a turn is never answered, ``response.create`` is refused, and
what a ``session.update`` may change. A session served without an LLM is a transcription
session from the start and cannot become a realtime one.

Switching ``type`` on a live session is allowed while nothing is in flight (no response
queued or running, no turn being transcribed): the input buffer is dropped, as for a
new VAD. While something is in flight the update is refused, naming ``session.type``.
"""

from __future__ import annotations

from typing import Any

from orchestrator.errors import InvalidRequest
from orchestrator.realtime.ports import VoicePorts
from orchestrator.realtime.protocol.session_types import ServerVad, SessionConfig


def answers_turns(config: SessionConfig) -> bool:
    """Whether a finished turn is answered (a realtime session with ``create_response``)."""
    vad = config.turn_detection
    return config.type == "realtime" and vad is not None and vad.create_response


def check_response(config: SessionConfig) -> None:
    """``response.create`` has nothing to answer with in a transcription session."""
    if config.type == "transcription":
        raise InvalidRequest("response.create is not available in a transcription session "
                             "(session.type is 'transcription'): turns are transcribed, "
                             "not answered", param="type")


def check_update(config: SessionConfig, changes: dict[str, Any], ports: VoicePorts, *,
                 busy: bool) -> bool:
    """Refuse what a transcription session cannot do; True when the update switches the
    session's type (the caller drops the input buffer)."""
    kind = changes.get("type", config.type)
    switching = kind != config.type
    if kind == "realtime" and ports.llm is None:
        raise InvalidRequest("session.type 'realtime' is unavailable: the LLM is not served "
                             "here (transcription sessions are)", param="session.type")
    if switching and busy:
        raise InvalidRequest(f"session.type cannot change from {config.type!r} to {kind!r} "
                             "while a turn or a response is in flight; wait for it (or "
                             "cancel it) first", param="session.type")
    vad = changes.get("turn_detection", config.turn_detection)
    if kind == "transcription" and isinstance(vad, ServerVad) and \
            vad.idle_timeout_ms is not None:
        raise InvalidRequest("turn_detection.idle_timeout_ms needs a response to create: a "
                             "transcription session has none",
                             param="session.turn_detection.idle_timeout_ms")
    return switching
