"""Twilio's side of a phone call: the Media Streams messages (bidirectional streams,
``<Connect><Stream>``), the TwiML that opens one, and the webhook signature.

Inbound: ``connected``, ``start`` (``streamSid``, ``callSid``, ``customParameters``,
``mediaFormat``), ``media`` (base64 μ-law, 8 kHz mono, 20 ms each), ``mark`` (a mark of
ours whose audio has played), ``dtmf``, ``stop``. Outbound: ``media``, ``mark``, ``clear``.
The stream's URL carries no query string (Twilio drops it): anything the stream needs, a
credential included, travels as ``<Parameter>`` and arrives in ``start.customParameters``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

import msgspec

MEDIA_ENCODING, MEDIA_RATE, MEDIA_CHANNELS = "audio/x-mulaw", 8000, 1
MAX_PARAMETERS = 32
"""customParameters kept from ``start`` (Twilio allows a few dozen; more is not Twilio)."""
MAX_PARAMETER_CHARS = 512
MAX_MESSAGE_CHARS = 64 * 1024
"""Twilio's messages are small (a 20 ms ``media`` is ~300 characters): a larger frame is
not parsed at all."""


class BadStart(ValueError):
    """A ``start`` message this server cannot serve (its reason closes the stream)."""


@dataclass(frozen=True, slots=True)
class StreamStart:
    stream_sid: str
    call_sid: str
    parameters: dict[str, str]


def decode(text: str) -> dict[str, Any] | None:
    """A Twilio message as a dict with a string ``event``; None for anything else."""
    if len(text) > MAX_MESSAGE_CHARS:
        return None
    try:
        message = msgspec.json.decode(text)
    except msgspec.DecodeError:
        return None
    if not isinstance(message, dict) or not isinstance(message.get("event"), str):
        return None
    return message


def parse_start(message: dict[str, Any]) -> StreamStart:
    """The stream a ``start`` message opens; BadStart for one that is not Twilio's
    bidirectional μ-law 8 kHz mono stream."""
    start = message.get("start")
    if not isinstance(start, dict):
        raise BadStart("the start message has no 'start' object")
    stream_sid = message.get("streamSid") or start.get("streamSid")
    if not isinstance(stream_sid, str) or not stream_sid or len(stream_sid) > 64:
        raise BadStart("the start message has no streamSid")
    media = start.get("mediaFormat")
    if not isinstance(media, dict) or (media.get("encoding"), _int(media.get("sampleRate")),
                                       _int(media.get("channels"))) != \
            (MEDIA_ENCODING, MEDIA_RATE, MEDIA_CHANNELS):
        raise BadStart(f"mediaFormat must be {MEDIA_ENCODING} at {MEDIA_RATE} Hz, mono")
    raw = start.get("customParameters") or {}
    if not isinstance(raw, dict):
        raise BadStart("customParameters must be an object")
    parameters = {str(k)[:64]: v[:MAX_PARAMETER_CHARS] for k, v in
                  list(raw.items())[:MAX_PARAMETERS] if isinstance(v, str)}
    call_sid = start.get("callSid")
    return StreamStart(stream_sid, call_sid if isinstance(call_sid, str) else "", parameters)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def media_payload(message: dict[str, Any]) -> bytes | None:
    """The μ-law bytes of an inbound ``media`` message; None when it has none (another
    track, no payload, bad base64)."""
    media = message.get("media")
    if not isinstance(media, dict) or media.get("track", "inbound") != "inbound":
        return None
    payload = media.get("payload")
    if not isinstance(payload, str):
        return None
    try:
        return base64.b64decode(payload, validate=True)
    except ValueError:  # binascii.Error
        return None


def mark_name(message: dict[str, Any]) -> str | None:
    mark = message.get("mark")
    name = mark.get("name") if isinstance(mark, dict) else None
    return name if isinstance(name, str) else None


# --- outbound --------------------------------------------------------------------------------

def media(stream_sid: str, payload_b64: str) -> str:
    """Reply audio: base64 μ-law 8 kHz, played in order after what was sent before."""
    return msgspec.json.encode({"event": "media", "streamSid": stream_sid,
                                "media": {"payload": payload_b64}}).decode()


def mark(stream_sid: str, name: str) -> str:
    """Twilio echoes it once the audio sent before it has played."""
    return msgspec.json.encode({"event": "mark", "streamSid": stream_sid,
                                "mark": {"name": name}}).decode()


def clear(stream_sid: str) -> str:
    """Drop the audio Twilio has buffered (barge-in)."""
    return msgspec.json.encode({"event": "clear", "streamSid": stream_sid}).decode()


# --- TwiML and the webhook signature ---------------------------------------------------------

def connect_stream(url: str, parameters: dict[str, str]) -> str:
    """TwiML that connects the call to a bidirectional stream at ``url`` (``wss://``)."""
    params = "".join(f'<Parameter name="{_attr(name)}" value="{_attr(value)}"/>'
                     for name, value in parameters.items())
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            f'<Response><Connect><Stream url="{_attr(url)}">{params}</Stream></Connect>'
            "</Response>")


def _attr(value: str) -> str:
    return escape(value, {'"': "&quot;"})


def say(text: str) -> str:
    """TwiML that says ``text`` and hangs up (the call cannot be served)."""
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            f"<Response><Say>{escape(text)}</Say><Hangup/></Response>")


def signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """``X-Twilio-Signature``: base64 HMAC-SHA1, keyed with the account's auth token, of
    the full URL Twilio requested followed by each POST parameter's name and value, in
    name order."""
    data = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signed_by_twilio(auth_token: str, url: str, params: Iterable[tuple[str, str]],
                     given: str | None) -> bool:
    return given is not None and hmac.compare_digest(
        signature(auth_token, url, params).encode(), given.encode())
