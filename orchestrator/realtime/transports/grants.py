"""The first client events of a connection opened with a client secret: the session
configuration it was minted with, as one ``session.update`` in the connection's protocol.

Each transport passes these to :func:`~.base.serve_session` (``first_events``), so the
client sees ``session.created`` then ``session.updated``, exactly as if it had sent the
update itself; it went through the same checks when the secret was minted.

The grant holds the update in the engine's shape, which ``/ws`` reads as is and OpenAI's
beta protocol too but for one name (``input_audio_noise_reduction``); OpenAI's GA
protocol nests audio settings, so it is rewritten for it.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from orchestrator.auth.principal import Principal
from orchestrator.realtime.protocol.openai_fields import GA_FORMATS

Protocol = Literal["engine", "ga", "beta"]
_GA_FORMAT_NAMES = {engine: ga for ga, engine in GA_FORMATS.items()}


def first_events(principal: Principal, protocol: Protocol) -> list[str]:
    """The events to handle before the client's own: none without a client secret."""
    grant = principal.client_secret
    if grant is None:
        return []
    session = ga_session(grant.session) if protocol == "ga" else \
        beta_session(grant.session) if protocol == "beta" else grant.session
    return [msgspec.json.encode({"type": "session.update", "session": session}).decode()]


def ga_session(update: dict[str, Any]) -> dict[str, Any]:
    """An engine-shaped ``session.update`` body in OpenAI's GA shape (what
    :class:`~orchestrator.realtime.protocol.openai.ClientTranslator` maps back)."""
    out: dict[str, Any] = {}  # no type unless minted with one: the server's default holds
    audio_in: dict[str, Any] = {}
    audio_out: dict[str, Any] = {}
    for name, value in update.items():
        match name:
            case "modalities":
                out["output_modalities"] = ["audio"] if "audio" in value else ["text"]
            case "max_response_output_tokens":
                out["max_output_tokens"] = value
            case "input_audio_format":
                audio_in["format"] = {"type": _GA_FORMAT_NAMES[value]}
            case "input_audio_transcription":
                audio_in["transcription"] = value
            case "turn_detection" | "noise_reduction":
                audio_in[name] = value
            case "output_audio_format":
                audio_out["format"] = {"type": _GA_FORMAT_NAMES[value]}
            case "voice" | "speed":
                audio_out[name] = value
            case _:  # same name in both: instructions, tools, tool_choice, the extensions
                out[name] = value
    audio = {key: part for key, part in (("input", audio_in), ("output", audio_out)) if part}
    if audio:
        out["audio"] = audio
    return out


def beta_session(update: dict[str, Any]) -> dict[str, Any]:
    """The engine's shape in OpenAI's beta one: the same names but noise reduction's."""
    return {("input_audio_noise_reduction" if name == "noise_reduction" else name): value
            for name, value in update.items()}
