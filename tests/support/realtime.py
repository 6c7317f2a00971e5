"""A live orchestrator (uvicorn on a free port, in the test's event loop) and a small
realtime WebSocket client for protocol tests."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import websockets

from bench.live import serving
from orchestrator.realtime.audio import float_to_pcm16
from orchestrator.realtime.controllers import TRANSPORT_MAX_FRAME_BYTES
from tests.support.settings import base_settings
from tests.support.tiny_voice import TinyVoice


@dataclass
class LiveServer:
    base_url: str
    ws_url: str
    app: Any

    @property
    def runtime(self) -> Any:
        return self.app.state.runtime

    def use(self, services: dict[str, Any]) -> None:
        self.runtime.services.update(services)

    async def new_session(self, user_id: str = "alice", **fields: Any) -> str:
        record = await self.runtime.conversations.create_session(user_id, **fields)
        return record.id

    def connect(self, user_id: str, session_id: str, **options: Any) -> RealtimeClient:
        """``options``: what ``websockets.connect`` takes (``additional_headers``,
        ``subprotocols``, ``origin``)."""
        return RealtimeClient(f"{self.ws_url}/ws/{user_id}/{session_id}", **options)


@asynccontextmanager
async def live_server(tmp_path: Path, **overrides: Any) -> AsyncIterator[LiveServer]:
    from orchestrator.app import create_app

    url = f"sqlite+aiosqlite:///{tmp_path / 'live.db'}"
    fields = {"triton_url": None, "log_format": "text", **overrides}
    settings = dataclasses.replace(base_settings(), database_url=url,
                                   data_dir=str(tmp_path / "data"), **fields)
    app = create_app(settings)
    async with serving(app, drain_timeout_s=settings.drain_timeout_s,
                       ws_max_size=TRANSPORT_MAX_FRAME_BYTES) as base_url:
        yield LiveServer(base_url, base_url.replace("http://", "ws://", 1), app)


@asynccontextmanager
async def tiny_voice_server(tmp_path: Path, voice: TinyVoice,
                            **overrides: Any) -> AsyncIterator[LiveServer]:
    """:func:`live_server` answering on :class:`TinyVoice`'s models (replies of at most 16
    tokens; memory off unless ``overrides`` turn it on)."""
    async with live_server(tmp_path, **voice.fields(**{"memory_enabled": False,
                                                       **overrides})) as server:
        voice.pin(server.runtime)
        yield server


class RealtimeClient:
    def __init__(self, url: str, **options: Any) -> None:
        self.url, self.options = url, options
        self.ws: Any = None
        self.seen: list[dict] = []

    async def __aenter__(self) -> RealtimeClient:
        self.ws = await websockets.connect(self.url, max_size=None, **self.options)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.ws.close()

    async def send(self, type: str, **fields: Any) -> None:
        await self.ws.send(json.dumps({"type": type, **fields}))

    async def send_raw(self, data: str | bytes) -> None:
        await self.ws.send(data)

    async def next(self, wait_s: float = 20.0) -> dict:
        event = json.loads(await asyncio.wait_for(self.ws.recv(), wait_s))
        self.seen.append(event)
        return event

    async def until(self, *types: str, wait_s: float = 20.0) -> list[dict]:
        """Events up to and including the first of ``types``."""
        out = []
        while True:
            event = await self.next(wait_s)
            out.append(event)
            if event["type"] in types:
                return out

    async def append(self, samples: np.ndarray, rate: int, chunk_ms: int = 100,
                     pace: float = 0.0) -> None:
        """Send audio as base64 ``input_audio_buffer.append`` events; ``pace`` 1.0 is real
        time, 0 as fast as possible."""
        pcm = float_to_pcm16(samples)
        step = rate * chunk_ms // 1000 * 2
        for start in range(0, len(pcm), step):
            await self.send("input_audio_buffer.append",
                            audio=base64.b64encode(pcm[start:start + step]).decode())
            if pace:
                await asyncio.sleep(chunk_ms / 1000 / pace)


def audio_of(events: list[dict]) -> bytes:
    return b"".join(base64.b64decode(e["delta"]) for e in events
                    if e["type"] == "response.audio.delta")


def types_of(events: list[dict]) -> list[str]:
    """Event types with consecutive repeats collapsed (deltas come in runs)."""
    out: list[str] = []
    for event in events:
        if not out or out[-1] != event["type"]:
            out.append(event["type"])
    return out


async def events_within(client: RealtimeClient, seconds: float) -> list[dict]:
    """Every event that arrives until none has for ``seconds``."""
    out: list[dict] = []
    try:
        while True:
            out.append(await client.next(wait_s=seconds))
    except TimeoutError:
        return out


async def stored_turns(live: LiveServer, session_id: str) -> list[tuple[str, str]]:
    """(role, text) of each stored turn of the session."""
    turns, _ = await live.runtime.conversations.list_turns(session_id)
    return [(t.role, t.text) for t in turns]


async def refused(client: RealtimeClient, code: int) -> dict:
    """The ``error`` event of a refused connection, after which it closes with ``code``."""
    error = await client.next()
    assert error["type"] == "error", error
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await client.next()
    assert closed.value.rcvd.code == code
    return error["error"]
