"""What a bench client speaks on each realtime protocol: how an audio chunk travels, which
event carries reply audio, the URL a session connects to, and its ``session.update``.

:mod:`bench.voice` drives turns through these; the protocols themselves are the server's
(``/ws``, OpenAI's ``/v1/realtime``, WebRTC calls, Twilio media streams).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import numpy as np
import websockets

from bench.twilio_peer import StreamSocket
from bench.webrtc_peer import AUDIBLE, HEARD_DELTA, CallSocket

RATE = 24000
"""The rate the bench's clients speak and listen at."""
CHUNK_MS = 20

PROTOCOLS = ("ws", "openai", "webrtc", "twilio")
AUDIO_DELTA = {"ws": "response.audio.delta", "openai": "response.output_audio.delta",
               "webrtc": HEARD_DELTA, "twilio": HEARD_DELTA}
PLAYOUT_ENDED = ("output_audio_buffer.stopped", "output_audio_buffer.cleared")


def append_frame(pcm: bytes, protocol: str) -> str | bytes:
    """One audio chunk as the protocol's clients send it: a binary frame on /ws, a base64
    ``input_audio_buffer.append`` on /v1/realtime (what the OpenAI SDK sends)."""
    if protocol in ("ws", "webrtc", "twilio"):  # a call's audio goes on its microphone
        return pcm
    return json.dumps({"type": "input_audio_buffer.append",
                       "audio": base64.b64encode(pcm).decode()})


def leading_silence_s(delta: str) -> float | None:
    """Seconds of near-silence at the start of a base64 PCM16 delta; None: all of it.
    ``client_heard_ms`` counts to the first sound, so that a call (whose track carries
    silence between replies and is timed from its first audible frame) and a WebSocket
    (timed from its first delta, which may begin with the voice's leading silence)
    compare alike."""
    try:
        pcm = np.frombuffer(base64.b64decode(delta), dtype="<i2")
    except ValueError:
        return None
    loud = np.flatnonzero(np.abs(pcm.astype(np.float32)) / 32768.0 > AUDIBLE)
    return None if not len(loud) else float(loud[0]) / RATE


def reply_text(response: dict) -> str:
    if "text" in response:
        return response["text"]
    parts = [part for item in response.get("output", []) for part in item.get("content", [])]
    return "".join(part.get("transcript") or part.get("text") or "" for part in parts)


def connection(url: str, headers: dict[str, str] | None, protocol: str,
                loss: float, ordered_receive: bool = False) -> Any:
    """A WebSocket, or a WebRTC call driven like one."""
    if protocol == "webrtc":
        base, _, query = url.partition("/v1/realtime/calls")
        return CallSocket(base, headers, RATE, loss=loss, query=query,
                          ordered_receive=ordered_receive)
    if protocol == "twilio":
        return StreamSocket(url, headers, RATE)
    return websockets.connect(url, max_size=None, additional_headers=headers)


async def connect_url(url: str, headers: dict[str, str] | None, protocol: str) -> str:
    if protocol == "webrtc":
        return url + "/v1/realtime/calls"
    if protocol == "openai":
        return url.replace("http", "ws", 1) + "/v1/realtime?model=llm"
    async with httpx.AsyncClient(base_url=url, headers=headers) as http:
        response = await http.post("/api/sessions/new", json={})
        response.raise_for_status()
        created = response.json()
    if protocol == "twilio":  # the stream continues that session round after round
        return url.replace("http", "ws", 1) + \
            f"/v1/twilio/media-stream?session_id={created['session_id']}" \
            f"&user_id={created['user_id']}"  # open access or an admin key names the user
    return url.replace("http", "ws", 1) + created["websocket_path"]


def session_update(session: dict, protocol: str) -> dict:
    if protocol == "ws":
        update = {"input_sample_rate": RATE, "output_sample_rate": RATE, **session}
        if "language" in update:  # /ws names the spoken language inside the transcription
            update["input_audio_transcription"] = {"language": update.pop("language")}
        return update
    update: dict = {"type": "realtime", "audio": {"input": {
        "format": {"type": "audio/pcm", "rate": RATE}}, "output": {
        "format": {"type": "audio/pcm", "rate": RATE}}}}
    if "turn_detection" in session:
        update["audio"]["input"]["turn_detection"] = session["turn_detection"]
    if "temperature" in session:
        update["temperature"] = session["temperature"]  # an extension of this server
    if "language" in session:
        update["audio"]["input"]["transcription"] = {"language": session["language"]}
    return update
