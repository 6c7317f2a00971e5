"""Text frames of ``/ws`` as client events (:data:`~.events.ClientEvent`)."""

from __future__ import annotations

from typing import Any

import msgspec

from orchestrator.errors import InvalidRequest
from orchestrator.realtime.protocol.client_events import client_event_decoder, invalid_event


class _EventId(msgspec.Struct):
    event_id: str | None = None


def event_id_of(text: str) -> str | None:
    """The client's ``event_id`` of an event that failed to decode, when it has one (the
    ``error`` names the event at fault)."""
    try:
        event_id = msgspec.json.decode(text, type=_EventId).event_id
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None
    return event_id[:128] if event_id else None


def decode_client_event(text: str) -> Any:
    """A text frame of ``/ws`` as one of :data:`~.events.ClientEvent`; a 400 otherwise."""
    try:
        return client_event_decoder.decode(text)
    except msgspec.ValidationError as exc:
        raise invalid_event(exc) from None
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"malformed JSON: {exc}") from None
    except RecursionError:
        raise InvalidRequest("malformed JSON: nested too deeply") from None
