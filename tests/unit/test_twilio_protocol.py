"""Twilio's messages, TwiML and webhook signature (:mod:`orchestrator.realtime.transports.
twilio.protocol`), without a server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from orchestrator.realtime.transports.twilio import protocol

START = {"event": "start", "sequenceNumber": "1", "streamSid": "MZ1",
         "start": {"streamSid": "MZ1", "callSid": "CA1", "accountSid": "AC1",
                   "tracks": ["inbound"], "customParameters": {"token": "ek_x", "n": 5},
                   "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000,
                                   "channels": 1}}}


def test_a_start_gives_the_stream_and_its_string_parameters() -> None:
    start = protocol.parse_start(START)
    assert (start.stream_sid, start.call_sid) == ("MZ1", "CA1")
    assert start.parameters == {"token": "ek_x"}  # Twilio's values are strings


@pytest.mark.parametrize("change", [
    {"streamSid": None, "start": {**START["start"], "streamSid": None}},
    {"start": None},
    {"start": {**START["start"], "mediaFormat": {"encoding": "audio/x-mulaw",
                                                  "sampleRate": 16000, "channels": 1}}},
    {"start": {**START["start"], "mediaFormat": None}},
    {"start": {**START["start"], "customParameters": ["token"]}},
])
def test_a_start_that_is_not_a_mulaw_8k_mono_stream_is_refused(change: dict) -> None:
    with pytest.raises(protocol.BadStart):
        protocol.parse_start({**START, **change})


@pytest.mark.parametrize("text", ["", "nope", "[]", '{"event": 1}', '{"no": "event"}',
                                  '{"event": "media", "pad": "' + "x" * 70000 + '"}'])
def test_what_is_not_a_twilio_message_decodes_to_none(text: str) -> None:
    assert protocol.decode(text) is None


def test_media_payloads_of_the_inbound_track_only() -> None:
    payload = base64.b64encode(b"\xff\x7f").decode()
    assert protocol.media_payload({"media": {"track": "inbound", "payload": payload}}) \
        == b"\xff\x7f"
    assert protocol.media_payload({"media": {"payload": payload}}) == b"\xff\x7f"
    for media in ({"track": "outbound", "payload": payload}, {"payload": "%%"},
                  {"payload": 5}, None):
        assert protocol.media_payload({"media": media}) is None


def test_outbound_messages_carry_the_stream_sid() -> None:
    assert json.loads(protocol.media("MZ1", "//8=")) == {
        "event": "media", "streamSid": "MZ1", "media": {"payload": "//8="}}
    assert json.loads(protocol.mark("MZ1", "m1")) == {
        "event": "mark", "streamSid": "MZ1", "mark": {"name": "m1"}}
    assert json.loads(protocol.clear("MZ1")) == {"event": "clear", "streamSid": "MZ1"}


def test_twiml_escapes_its_attributes() -> None:
    twiml = protocol.connect_stream("wss://h/v1/twilio/media-stream",
                                    {"token": 'ek_"<&>'})
    assert twiml == ('<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
                     '<Stream url="wss://h/v1/twilio/media-stream">'
                     '<Parameter name="token" value="ek_&quot;&lt;&amp;&gt;"/>'
                     "</Stream></Connect></Response>")


def test_the_signature_is_twilios_algorithm() -> None:
    url = "https://example.com/v1/twilio/voice?x=1"
    params = [("To", "+1800"), ("CallSid", "CA1"), ("From", "+1234"), ("Digits", "12")]
    data = url + "CallSidCA1Digits12From+1234To+1800"
    expected = base64.b64encode(hmac.new(b"token", data.encode(), hashlib.sha1).digest())
    assert protocol.signature("token", url, params) == expected.decode()
    assert protocol.signed_by_twilio("token", url, params, expected.decode())
    assert not protocol.signed_by_twilio("token", url, params, None)
    assert not protocol.signed_by_twilio("other", url, params, expected.decode())
    assert not protocol.signed_by_twilio("token", url + "&y=2", params, expected.decode())
