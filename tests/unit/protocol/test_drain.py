"""SIGTERM drains realtime sockets: the turn in flight finishes and is stored, the client
gets an ``error`` event ``server_shutting_down`` and a 1001 close, readiness turns 503 at
once and new sockets are refused; past ``DRAIN_TIMEOUT_S`` the reply is cut where it was
and stored as heard. The server's own handler is called, as the signal calls it."""

from __future__ import annotations

import asyncio
import signal
from contextlib import asynccontextmanager

import httpx
import pytest
import websockets

from tests.support.fake_voice import FakeLLM, fake_services
from tests.support.realtime import live_server

pytestmark = pytest.mark.asyncio
MANUAL_16K = {"turn_detection": None, "input_sample_rate": 16000, "output_sample_rate": 16000}
REPLY = [f" Sentence number {i} is here." for i in range(12)]


async def _reply_in_flight(client) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    await client.next()
    await client.send("session.update", session=MANUAL_16K)
    await client.next()
    await client.append(np.full(12800, 0.1, np.float32), 16000)
    await client.send("input_audio_buffer.commit")
    await client.send("response.create")
    await client.until("response.audio.delta")


async def _closed(client) -> tuple[list[dict], int]:  # type: ignore[no-untyped-def]
    events = []
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            events.append(await client.next())
    assert closed.value.rcvd is not None
    return events, closed.value.rcvd.code


@asynccontextmanager
async def _sigterm_mid_reply(tmp_path, llm: FakeLLM, drain_timeout_s: float):  # type: ignore[no-untyped-def]
    """A live server whose socket is mid-reply when SIGTERM's handler runs; yields
    (server, session id, client)."""
    async with live_server(tmp_path, drain_timeout_s=drain_timeout_s) as live:
        live.use(fake_services(llm=llm))
        session_id = await live.new_session("alice")
        async with live.connect("alice", session_id) as client:
            await _reply_in_flight(client)
            live.app.state.server.handle_exit(signal.SIGTERM, None)
            yield live, session_id, client


async def test_sigterm_lets_the_turn_finish_then_closes_1001(tmp_path) -> None:
    llm = FakeLLM(REPLY, delay=0.08)  # about a second of reply
    async with _sigterm_mid_reply(tmp_path, llm, 15.0) as (live, session_id, client):
        other = await live.new_session("bob")
        await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=live.base_url) as http:
            ready = await http.get("/readyz")
            live_probe = await http.get("/livez")
        assert ready.status_code == 503 and ready.json()["status"] == "draining"
        assert live_probe.status_code == 200  # draining is not dying: no restart
        async with live.connect("bob", other) as late:
            refused, code = await _closed(late)
        assert code == 1001 and refused[-1]["error"]["code"] == "server_shutting_down"
        events, code = await _closed(client)
        server_task_done = live.app.state.server.should_exit
    kinds = [e["type"] for e in events]
    done = events[kinds.index("response.done")]
    assert done["response"]["status"] == "completed"  # the turn in flight was let finish
    assert kinds[-1] == "error" and events[-1]["error"]["code"] == "server_shutting_down"
    assert code == 1001
    assert server_task_done
    turns, _ = await live.runtime.conversations.list_turns(session_id)
    assert [t.role for t in turns] == ["user", "assistant"]
    assert turns[1].text == "".join(REPLY).strip() and not turns[1].interrupted


async def test_past_the_drain_timeout_the_reply_is_cut_and_stored_as_heard(tmp_path) -> None:
    long_reply = [f" Sentence number {i} is here." for i in range(200)]
    llm = FakeLLM(long_reply, delay=0.05)
    async with _sigterm_mid_reply(tmp_path, llm, 0.5) as (live, session_id, client):
        events, code = await _closed(client)
    assert code == 1001
    assert events[-1]["error"]["code"] == "server_shutting_down"
    turns, _ = await live.runtime.conversations.list_turns(session_id)
    assert [t.role for t in turns] == ["user", "assistant"]
    assert turns[1].interrupted and 0 < len(turns[1].text) < len("".join(long_reply).strip())


async def test_while_draining_no_new_turn_starts(tmp_path) -> None:
    llm = FakeLLM(REPLY, delay=0.08)
    async with _sigterm_mid_reply(tmp_path, llm, 15.0) as (live, session_id, client):
        await asyncio.sleep(0.05)
        await client.send("response.create")
        events, code = await _closed(client)
    assert code == 1001
    refusals = [e for e in events if e["type"] == "error"]
    assert refusals[0]["error"]["code"] == "server_shutting_down"
    assert "no new turn" in refusals[0]["error"]["message"]
    assert [e["type"] for e in events].count("response.created") == 0
    turns, _ = await live.runtime.conversations.list_turns(session_id)
    assert [t.role for t in turns] == ["user", "assistant"]
