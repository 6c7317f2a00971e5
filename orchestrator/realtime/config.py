"""A realtime session's configuration: where it starts from (settings and the stored
session) and what a ``session.update`` may change."""

from __future__ import annotations

from typing import Any

import msgspec

from orchestrator.errors import InvalidRequest
from orchestrator.realtime.ports import VoicePorts
from orchestrator.realtime.protocol.session_types import (
    InputTranscription,
    SemanticVad,
    ServerVad,
    SessionConfig,
    TurnDetection,
)
from orchestrator.settings import Settings
from storage.conversations import SessionRecord


def default_server_vad(settings: Settings) -> ServerVad:
    return ServerVad(threshold=settings.vad_threshold,
                     prefix_padding_ms=settings.vad_prefix_padding_ms,
                     silence_duration_ms=settings.vad_silence_duration_ms)


def default_turn_detection(settings: Settings) -> TurnDetection:
    if settings.realtime_turn_detection == "semantic_vad":
        return SemanticVad(eagerness=settings.vad_eagerness)  # type: ignore[arg-type]
    return default_server_vad(settings)


def initial_config(record: SessionRecord, settings: Settings, has_tts: bool,
                   has_llm: bool = True) -> SessionConfig:
    """Without an LLM served, the session is a transcription session (turns are
    transcribed and stored, never answered)."""
    return SessionConfig(
        id=record.id, modalities=["text", "audio"] if has_tts else ["text"],
        instructions=record.instructions or settings.default_instructions,
        voice=record.voice or settings.default_voice, speed=1.0,
        input_audio_format="pcm16", output_audio_format="pcm16",
        input_sample_rate=24000, output_sample_rate=24000,
        input_audio_transcription=InputTranscription(language=record.language),
        turn_detection=default_turn_detection(settings),
        temperature=settings.llm_temperature,
        max_response_output_tokens=settings.llm_max_tokens,
        type="realtime" if has_llm else "transcription")


def changes_of(update: Any) -> dict[str, Any]:
    """The fields a ``session.update`` sets."""
    return {name: getattr(update, name) for name in update.__struct_fields__
            if getattr(update, name) is not msgspec.UNSET}


def check_offered(ports: VoicePorts, changes: dict[str, Any]) -> None:
    """Audio replies need text-to-speech; a voice or language the served models lack is
    refused now, not at the next turn."""
    if "audio" in changes.get("modalities", []) and ports.tts is None:
        raise InvalidRequest("audio replies are unavailable: text-to-speech is disabled")
    catalogue = ports.catalogue
    if catalogue is None:
        return
    if changes.get("voice"):
        catalogue.check_voice(changes["voice"], param="session.voice")
    transcription = changes.get("input_audio_transcription")
    if transcription is not None:
        catalogue.check_language(transcription.language,
                                 param="session.input_audio_transcription.language")


def stored_changes(config: SessionConfig, changes: dict[str, Any]) -> dict[str, Any]:
    """What of an update the stored session keeps (voice, instructions, language)."""
    stored = {"voice": changes.get("voice"), "instructions": changes.get("instructions"),
              "language": config.input_audio_transcription.language
              if "input_audio_transcription" in changes else None}
    return {key: value for key, value in stored.items() if value is not None}
