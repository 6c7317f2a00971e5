"""Client secrets without a server: the expires_after bounds, the routes a secret opens,
its redaction, and the grant's session.update read back by each protocol unchanged."""

from __future__ import annotations

import msgspec
import pytest

from orchestrator.auth.client_secrets import opens_realtime
from orchestrator.auth.principal import ClientSecretGrant, Principal
from orchestrator.errors import InvalidRequest
from orchestrator.realtime.client_secret_routes import ExpiresAfter, minted_for, ttl_seconds
from orchestrator.realtime.config import changes_of
from orchestrator.realtime.protocol.decode import decode_client_event
from orchestrator.realtime.protocol.openai import ClientTranslator
from orchestrator.realtime.transports.grants import first_events, ga_session
from orchestrator.redaction import redact


@pytest.mark.parametrize(("seconds", "ok"), [(9, False), (10, True), (60, True),
                                             (600, True), (601, False), (-1, False)])
def test_expires_after_seconds_is_10_to_600(seconds: int, ok: bool) -> None:
    if ok:
        assert ttl_seconds(ExpiresAfter(seconds=seconds)) == seconds
        return
    with pytest.raises(InvalidRequest) as refused:
        ttl_seconds(ExpiresAfter(seconds=seconds))
    assert refused.value.param == "expires_after.seconds"


def test_expires_after_defaults_to_a_minute() -> None:
    assert ttl_seconds(None) == ttl_seconds(ExpiresAfter()) == 60


def test_the_user_a_secret_is_minted_for() -> None:
    alice = Principal(key_id="key_a", user_id="alice")
    assert minted_for(alice, None) == minted_for(alice, "alice") == "alice"
    admin = Principal(key_id="admin", user_id=None, admin=True)
    assert minted_for(admin, "bob") == "bob"
    with pytest.raises(InvalidRequest) as refused:
        minted_for(admin, None)
    assert refused.value.param == "user_id"


@pytest.mark.parametrize(("kind", "method", "path", "opens"), [
    ("websocket", None, "/v1/realtime", True),
    ("websocket", None, "/ws/alice/sess_1", True),
    ("http", "POST", "/v1/realtime/calls", True),
    ("http", "GET", "/v1/realtime/calls", False),
    ("http", "POST", "/v1/realtime/calls/x", False),
    ("http", "POST", "/v1/realtime/client_secrets", False),
    ("http", "GET", "/api/sessions/sess_1", False),
    ("http", "POST", "/admin/keys", False),
    ("websocket", None, "/v1/realtimex", False),
    ("websocket", None, "/v1/twilio/media-stream", True),
    ("http", "POST", "/v1/twilio/voice", False),
])
def test_a_client_secret_opens_realtime_connections_only(kind: str, method: str | None,
                                                         path: str, opens: bool) -> None:
    assert opens_realtime({"type": kind, "method": method, "path": path}) is opens


def test_client_secrets_are_redacted() -> None:
    secret = "ek_" + "Ab3_-" * 8
    assert secret not in redact(f"Authorization: Basic {secret}; key={secret}")
    assert redact("check_this and ek_short") == "check_this and ek_short"


UPDATES = [
    {"instructions": "Speak like a pirate.", "voice": "alloy", "speed": 1.5},
    {"modalities": ["text"], "max_response_output_tokens": 200, "temperature": 0.6},
    {"input_audio_format": "g711_ulaw", "output_audio_format": "g711_alaw",
     "turn_detection": None},
    {"input_audio_format": "pcm16", "input_sample_rate": 16000,
     "input_audio_transcription": {"language": "ko"},
     "turn_detection": {"type": "semantic_vad", "eagerness": "low"}},
    {"turn_detection": {"type": "server_vad", "threshold": 0.7, "silence_duration_ms": 300},
     "tools": [{"type": "function", "name": "weather", "description": "the weather",
                "parameters": {"type": "object", "properties": {}}}],
     "tool_choice": "auto"},
    {},
]


def engine_update(update: dict) -> dict:
    """What the engine makes of a session.update body (its set fields, as builtins)."""
    event = decode_client_event(msgspec.json.encode(
        {"type": "session.update", "session": update}).decode())
    return msgspec.to_builtins(changes_of(event.session))


@pytest.mark.parametrize("update", UPDATES)
@pytest.mark.parametrize("protocol", ["ga", "beta", "engine"])
def test_the_grant_reads_back_as_minted_in_every_protocol(update: dict, protocol: str) -> None:
    stored = engine_update(update)
    principal = Principal(key_id="key_a", user_id="alice",
                          client_secret=ClientSecretGrant(id="cs_1", model="llm",
                                                          session=stored))
    [text] = first_events(principal, protocol)  # type: ignore[arg-type]
    decode = decode_client_event if protocol == "engine" else \
        ClientTranslator(protocol, model="llm")  # type: ignore[arg-type]
    event = decode(text)
    read = msgspec.to_builtins(changes_of(event.session))
    if read.get("mcp_tools") == [] and "tools" in read:  # OpenAI's tools: the whole list
        del read["mcp_tools"]
    assert read == stored


def test_no_grant_no_first_events() -> None:
    assert first_events(Principal(key_id="key_a", user_id="alice"), "ga") == []


def test_ga_session_nests_audio_settings() -> None:
    assert ga_session({"voice": "alloy", "input_audio_format": "g711_ulaw",
                       "modalities": ["text", "audio"]}) == {
        "output_modalities": ["audio"],
        "audio": {"input": {"format": {"type": "audio/pcmu"}},
                  "output": {"voice": "alloy"}}}
