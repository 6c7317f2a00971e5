"""MCP tools in realtime sessions, against a real MCP server: the ``mcp`` SDK's
``MCPServer`` (FastMCP) with two tools, served over streamable HTTP by uvicorn in the
test's event loop, and a session over ``WS /v1/realtime`` (the official ``openai`` SDK)
whose fake llm calls them. Every server event is validated against the SDK's GA event
union."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn

from tests.support.fake_voice import FakeToolLLM, fake_services
from tests.support.realtime import live_server, types_of
from tests.unit.protocol.test_realtime_sdk import GA_EVENTS, ask, events_until, sdk

pytestmark = pytest.mark.asyncio
MANUAL = {"type": "realtime", "output_modalities": ["text"],
          "audio": {"input": {"turn_detection": None}}}
HEADER_SECRET = "hdr-secret-4711"
TOKEN_SECRET = "tok-secret-0815"


def call(name: str, arguments: dict) -> list[str]:
    """A reply that is one tool call, in the fake template's Qwen-style markup."""
    body = json.dumps({"name": name, "arguments": arguments})
    return ["<tool", f"_call>\n{body}\n</tool_call>"]


@dataclass
class McpServer:
    url: str
    calls: list[tuple[str, dict]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)


@asynccontextmanager
async def mcp_server(sse: bool = False) -> AsyncIterator[McpServer]:
    """``sse``: the SDK's SSE transport (``/sse``) instead of streamable HTTP (``/mcp``)."""
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("voicechat-test")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    state = McpServer(f"http://127.0.0.1:{port}/{'sse' if sse else 'mcp'}")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        state.calls.append(("add", {"a": a, "b": b}))
        return a + b

    @server.tool()
    def weather(city: str) -> str:
        """The weather in a city now."""
        state.calls.append(("weather", {"city": city}))
        return f"sunny and 21 degrees in {city}"

    @server.tool()
    async def slow() -> str:
        """Takes its time."""
        state.calls.append(("slow", {}))
        await asyncio.sleep(2)
        return "done"

    app = server.sse_app() if sse else server.streamable_http_app()

    async def recording(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            state.headers.append({k.decode(): v.decode() for k, v in scope["headers"]})
        await app(scope, receive, send)

    uv = uvicorn.Server(uvicorn.Config(recording, host="127.0.0.1", port=port,
                                       log_level="warning", lifespan="on"))
    task = asyncio.create_task(uv.serve())
    while not uv.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield state
    finally:
        uv.should_exit = True
        await task


@pytest.fixture
async def live(tmp_path):  # type: ignore[no-untyped-def]
    async with live_server(tmp_path, realtime_turn_detection="server_vad") as server:
        yield server


@pytest.fixture
async def tools_server():  # type: ignore[no-untyped-def]
    async with mcp_server() as server:
        yield server


def mcp_tool(url: str, **fields: Any) -> dict:
    return {"type": "mcp", "server_label": "calc", "server_url": url, **fields}

async def with_tools(conn, session: dict, *tools: dict) -> None:  # type: ignore[no-untyped-def]
    """A new session set to ``session`` with MCP ``tools``, once their tools are listed."""
    await events_until(conn, "session.created", GA_EVENTS)
    await conn.session.update(session={**session, "tools": list(tools)})
    await events_until(conn, "mcp_list_tools.completed", GA_EVENTS)


async def ask_approval(conn, question: str) -> tuple[list[dict], dict]:  # type: ignore[no-untyped-def]
    """Ask ``question`` when calls wait for approval: the response's events and the
    ``mcp_approval_request`` it ended with."""
    asked = await ask(conn, question, GA_EVENTS, "conversation.item.done")
    (request,) = {e["type"]: e for e in asked}["response.done"]["response"]["output"]
    return asked, request


async def answer_approval(conn, request: dict, approve: bool = True, **fields: Any) -> None:  # type: ignore[no-untyped-def]
    await conn.conversation.item.create(item={
        "type": "mcp_approval_response", "approval_request_id": request["id"],
        "approve": approve, **fields})


async def ws_ask(ws, text: str) -> list[dict]:  # type: ignore[no-untyped-def]
    """On /ws: a user text item, then a response; its events up to response.done."""
    await ws.send("conversation.item.create", item={
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})
    await ws.until("conversation.item.created")
    await ws.send("response.create")
    return await ws.until("response.done")


async def cancel_while_calling(conn) -> tuple[list[dict], list[dict]]:  # type: ignore[no-untyped-def]
    """Cancel once a call is in progress: the cancelled response's events, then what
    came before a later session.update was answered."""
    await events_until(conn, "response.mcp_call.in_progress", GA_EVENTS)
    await conn.response.cancel()
    done = await events_until(conn, "rate_limits.updated", GA_EVENTS)
    await conn.session.update(session={"type": "realtime", "instructions": "Be brief."})
    return done, await events_until(conn, "session.updated", GA_EVENTS)


def assert_stopped_without_answer(done: list[dict], after: list[dict], llm) -> None:  # type: ignore[no-untyped-def]
    response = {e["type"]: e for e in done}["response.done"]["response"]
    assert response["status"] == "cancelled"
    # the call was stopped, not waited for (the tool takes 2 s and would have completed)
    assert "response.mcp_call.failed" in types_of(done)
    assert "response.mcp_call.completed" not in types_of(done)
    (output,) = response["output"]
    assert output["error"]["message"].startswith("cancelled")
    assert [e["type"] for e in after] == ["session.updated"]  # no answer followed
    assert len(llm.prompts) == 1



async def test_a_call_runs_on_the_server_and_the_answer_reads_its_result(
        live, tools_server, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    llm = FakeToolLLM([call("add", {"a": 2, "b": 3}), ["The sum is 5."]])
    live.use(fake_services(llm=llm))
    tool = mcp_tool(tools_server.url, require_approval="never", allowed_tools=["add"],
                    headers={"X-Api-Key": HEADER_SECRET}, authorization=TOKEN_SECRET)
    async with sdk(live).realtime.connect(model="llm") as conn:
        await events_until(conn, "session.created", GA_EVENTS)
        await conn.session.update(session={**MANUAL, "tools": [tool]})
        (updated,) = await events_until(conn, "session.updated", GA_EVENTS)
        echoed = updated["session"]["tools"]
        assert echoed[0]["server_label"] == "calc" and echoed[0]["type"] == "mcp"
        listing = await events_until(conn, "mcp_list_tools.completed", GA_EVENTS)
        assert types_of(listing) == ["mcp_list_tools.in_progress", "conversation.item.added",
                                     "conversation.item.done", "mcp_list_tools.completed"]
        item = listing[1]["item"]
        assert item["type"] == "mcp_list_tools" and item["server_label"] == "calc"
        assert [t["name"] for t in item["tools"]] == ["add"]  # allowed_tools
        assert item["tools"][0]["input_schema"]["required"] == ["a", "b"]
        assert listing[0]["item_id"] == item["id"] == listing[-1]["item_id"]

        first = await ask(conn, "What is 2 plus 3?", GA_EVENTS, "conversation.item.done")
        answer = await events_until(conn, "rate_limits.updated", GA_EVENTS)

    assert types_of(first) == [
        "response.created", "response.output_item.added", "conversation.item.added",
        "response.mcp_call_arguments.delta", "response.mcp_call_arguments.done",
        "response.mcp_call.in_progress", "response.mcp_call.completed",
        "response.output_item.done", "conversation.item.done", "response.done",
        "rate_limits.updated"]
    by_type = {e["type"]: e for e in first}
    assert json.loads(by_type["response.mcp_call_arguments.done"]["arguments"]) == \
        {"a": 2, "b": 3}
    (output,) = by_type["response.done"]["response"]["output"]
    assert output["type"] == "mcp_call" and output["name"] == "add"
    assert output["output"] == "5" and output["error"] is None
    # the MCP server ran it, with the session's headers and token
    assert tools_server.calls == [("add", {"a": 2, "b": 3})]
    assert all(h.get("x-api-key") == HEADER_SECRET for h in tools_server.headers)
    assert all(h.get("authorization") == f"Bearer {TOKEN_SECRET}"
               for h in tools_server.headers)
    # the answer is a response of its own that read the call and its result
    assert "".join(e["delta"] for e in answer if e["type"] == "response.output_text.delta") \
        == "The sum is 5."
    assert '"name": "add"' in llm.prompts[0] and '"weather"' not in llm.prompts[0]
    assert f"[tool] 5 (for {output['id']})" in llm.prompts[1]
    # secrets never came back, nor reached a log line
    everything = json.dumps([updated, *listing, *first, *answer])
    server_side = "\n".join(r.getMessage() for r in caplog.records  # not the test's client
                            if not r.name.startswith(("websockets.client", "openai")))
    for secret in (HEADER_SECRET, TOKEN_SECRET):
        assert secret not in everything
        assert secret not in server_side
    turns, _ = await live.runtime.conversations.list_turns(updated["session"]["id"])
    assert [(t.role, t.text) for t in turns] == [
        ("user", "What is 2 plus 3?"), ("assistant", ""), ("tool", "5"),
        ("assistant", "The sum is 5.")]


async def test_approval_always_waits_for_the_client(live, tools_server) -> None:
    llm = FakeToolLLM([call("weather", {"city": "Paris"}), ["Sunny in Paris."],
                       call("weather", {"city": "Oslo"}), ["Alright."]])
    live.use(fake_services(llm=llm))
    async with sdk(live).realtime.connect(model="llm") as conn:
        await with_tools(conn, MANUAL, mcp_tool(tools_server.url))

        asked, request = await ask_approval(conn, "Weather in Paris?")
        assert request["type"] == "mcp_approval_request" and request["name"] == "weather"
        assert json.loads(request["arguments"]) == {"city": "Paris"}
        assert "response.mcp_call.in_progress" not in types_of(asked)
        assert tools_server.calls == []  # nothing runs before the approval

        await answer_approval(conn, request)
        approved = await events_until(conn, "rate_limits.updated", GA_EVENTS)
        answer = await events_until(conn, "rate_limits.updated", GA_EVENTS)
        assert approved[0]["type"] == "conversation.item.added"
        assert approved[0]["item"]["type"] == "mcp_approval_response"
        (ran,) = {e["type"]: e for e in approved}["response.done"]["response"]["output"]
        assert ran["type"] == "mcp_call" and ran["approval_request_id"] == request["id"]
        assert ran["output"] == "sunny and 21 degrees in Paris"
        assert "response.mcp_call.completed" in types_of(approved)
        assert tools_server.calls == [("weather", {"city": "Paris"})]
        assert "".join(e["delta"] for e in answer
                       if e["type"] == "response.output_text.delta") == "Sunny in Paris."

        # a denial: no call, no response
        _, request = await ask_approval(conn, "And Oslo?")
        await answer_approval(conn, request, False, reason="not now")
        denied = await events_until(conn, "conversation.item.done", GA_EVENTS)
        assert denied[-1]["item"]["approve"] is False
        await conn.session.update(session={"type": "realtime", "instructions": "Be brief."})
        between = await events_until(conn, "session.updated", GA_EVENTS)
        assert [e["type"] for e in between] == ["session.updated"]
        assert tools_server.calls == [("weather", {"city": "Paris"})]
        # an answer to no waiting request is refused by name
        await answer_approval(conn, request)
        (error,) = await events_until(conn, "error", GA_EVENTS)
        assert error["error"]["param"] == "item.approval_request_id"


async def test_a_dead_server_fails_its_listing_and_the_session_goes_on(live) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    llm = FakeToolLLM([["Hello there."]])
    live.use(fake_services(llm=llm))
    async with sdk(live).realtime.connect(model="llm") as conn:
        await events_until(conn, "session.created", GA_EVENTS)
        await conn.session.update(session={**MANUAL, "tools": [mcp_tool(
            dead, authorization=TOKEN_SECRET)]})
        await events_until(conn, "session.updated", GA_EVENTS)
        failed = await events_until(conn, "error", GA_EVENTS)
        assert types_of(failed) == ["mcp_list_tools.in_progress", "mcp_list_tools.failed",
                                    "error"]
        assert "calc" in failed[-1]["error"]["message"]
        assert TOKEN_SECRET not in json.dumps(failed)
        reply = await ask(conn, "Hi?", GA_EVENTS, "conversation.item.done")
    assert {e["type"]: e for e in reply}["response.done"]["response"]["status"] == "completed"
    assert "".join(e["delta"] for e in reply
                   if e["type"] == "response.output_text.delta") == "Hello there."


async def test_a_call_that_fails_on_the_server_is_failed_and_answered(
        live, tools_server) -> None:
    llm = FakeToolLLM([call("add", {"a": "two"}), ["I could not add that."]])
    live.use(fake_services(llm=llm))
    async with sdk(live).realtime.connect(model="llm") as conn:
        await events_until(conn, "session.created", GA_EVENTS)
        await conn.session.update(session={**MANUAL, "tools": [mcp_tool(
            tools_server.url, require_approval={"never": {"tool_names": ["add"]}})]})
        await events_until(conn, "mcp_list_tools.completed", GA_EVENTS)
        first = await ask(conn, "Add two?", GA_EVENTS, "conversation.item.done")
        answer = await events_until(conn, "rate_limits.updated", GA_EVENTS)
    assert "response.mcp_call.failed" in types_of(first)
    (output,) = {e["type"]: e for e in first}["response.done"]["response"]["output"]
    assert output["error"]["type"] == "tool_execution_error"
    assert "I could not add that." in json.dumps(answer)
    assert "[tool] error: " in llm.prompts[1]


async def test_a_call_past_its_timeout_fails_and_the_session_goes_on(
        live, tools_server, monkeypatch) -> None:
    from orchestrator.realtime import mcp

    monkeypatch.setattr(mcp, "CALL_TIMEOUT_S", 0.5)
    llm = FakeToolLLM([call("slow", {}), ["It took too long."]])
    live.use(fake_services(llm=llm))
    async with sdk(live).realtime.connect(model="llm") as conn:
        await with_tools(conn, MANUAL, mcp_tool(tools_server.url, require_approval="never"))
        first = await ask(conn, "Go slow?", GA_EVENTS, "conversation.item.done")
        answer = await events_until(conn, "rate_limits.updated", GA_EVENTS)
    assert "response.mcp_call.failed" in types_of(first)
    (output,) = {e["type"]: e for e in first}["response.done"]["response"]["output"]
    assert "no answer in 0.5 s" in output["error"]["message"]
    assert tools_server.calls == [("slow", {})]
    assert "It took too long." in json.dumps(answer)


async def test_sse_servers_list_and_run_tools(live) -> None:
    llm = FakeToolLLM([call("weather", {"city": "Rome"}), ["Sunny in Rome."]])
    live.use(fake_services(llm=llm))
    async with mcp_server(sse=True) as server, \
            sdk(live).realtime.connect(model="llm") as conn:
        await events_until(conn, "session.created", GA_EVENTS)
        await conn.session.update(session={**MANUAL, "tools": [mcp_tool(
            server.url, require_approval="never", headers={"X-Api-Key": HEADER_SECRET})]})
        listing = await events_until(conn, "mcp_list_tools.completed", GA_EVENTS)
        assert {t["name"] for t in listing[-2]["item"]["tools"]} == {"add", "weather", "slow"}
        first = await ask(conn, "Rome?", GA_EVENTS, "conversation.item.done")
        answer = await events_until(conn, "rate_limits.updated", GA_EVENTS)
    (output,) = {e["type"]: e for e in first}["response.done"]["response"]["output"]
    assert output["output"] == "sunny and 21 degrees in Rome"
    assert server.calls == [("weather", {"city": "Rome"})]
    assert any(h.get("x-api-key") == HEADER_SECRET for h in server.headers)
    assert "Sunny in Rome." in json.dumps(answer)


async def test_the_ws_path_takes_mcp_tools_too(live, tools_server) -> None:
    llm = FakeToolLLM([call("add", {"a": 1, "b": 1}), ["Two."]])
    live.use(fake_services(llm=llm))
    session_id = await live.new_session()
    async with live.connect("alice", session_id) as ws:
        await ws.until("session.created")
        await ws.send("session.update", session={
            "modalities": ["text"], "turn_detection": None, "mcp_tools": [mcp_tool(
                tools_server.url, require_approval="never",
                authorization=TOKEN_SECRET)]})
        (updated,) = await ws.until("session.updated")
        assert updated["session"]["mcp_tools"][0]["authorization"] is None
        listing = await ws.until("mcp_list_tools.completed")
        assert types_of(listing) == ["mcp_list_tools.in_progress",
                                     "conversation.item.created", "mcp_list_tools.completed"]
        first = await ws_ask(ws, "1 + 1?")
        answer = await ws.until("response.done")
        call_item = first[-1]["response"]["function_calls"][0]
        await ws.send("conversation.item.retrieve", item_id=call_item["id"])
        (retrieved,) = await ws.until("conversation.item.retrieved")
        assert retrieved["item"] == call_item
        await ws.send("conversation.item.delete", item_id=call_item["id"])
        await ws.until("conversation.item.deleted")
    turns, _ = await live.runtime.conversations.list_turns(session_id)
    assert [(t.role, t.text) for t in turns] == [("user", "1 + 1?"), ("assistant", "Two.")]
    assert "response.mcp_call.completed" in types_of(first)
    assert first[-1]["response"]["function_calls"][0]["output"] == "2"
    assert answer[-1]["response"]["text"] == "Two."
    assert tools_server.calls == [("add", {"a": 1, "b": 1})]


async def test_required_tool_choice_still_lets_the_answer_speak(live, tools_server) -> None:
    llm = FakeToolLLM([['add", "arguments": {"a": 1, "b": 2}}\n</tool_call>'], ["Three."]])
    live.use(fake_services(llm=llm))
    async with sdk(live).realtime.connect(model="llm") as conn:
        await events_until(conn, "session.created", GA_EVENTS)
        await conn.session.update(session={**MANUAL, "tool_choice": "required", "tools": [
            mcp_tool(tools_server.url, require_approval="never")]})
        await events_until(conn, "mcp_list_tools.completed", GA_EVENTS)
        first = await ask(conn, "1 + 2?", GA_EVENTS, "conversation.item.done")
        answer = await events_until(conn, "rate_limits.updated", GA_EVENTS)
    assert "response.mcp_call.completed" in types_of(first)
    assert llm.prompts[1].endswith("[assistant]")  # not forced into another call
    assert "Three." in json.dumps(answer)


async def test_a_cancel_while_a_call_runs_ends_the_response_without_an_answer(
        live, tools_server) -> None:
    llm = FakeToolLLM([call("slow", {}), ["Never said."]])
    live.use(fake_services(llm=llm))
    async with sdk(live).realtime.connect(model="llm") as conn:
        await with_tools(conn, MANUAL, mcp_tool(tools_server.url, require_approval="never"))
        await conn.conversation.item.create(item={"type": "message", "role": "user",
                                                  "content": [{"type": "input_text",
                                                               "text": "Slowly?"}]})
        await events_until(conn, "conversation.item.done", GA_EVENTS)
        await conn.response.create()
        done, after = await cancel_while_calling(conn)
    assert_stopped_without_answer(done, after, llm)


SPOKEN = {"type": "realtime", "output_modalities": ["audio"],
          "audio": {"input": {"turn_detection": None}}}


@pytest.fixture
async def filling(tmp_path):  # type: ignore[no-untyped-def]
    # 800 ms: the slow tool takes 2 s; a fast call over local HTTP once took over 300 ms
    # on a loaded 2-core machine, which said a filler the test forbids.
    async with live_server(tmp_path, realtime_mcp_filler_ms=800) as server:
        yield server


async def test_a_slow_call_is_filled_with_speech_and_the_filler_is_kept(
        filling, tools_server) -> None:
    """A spoken response whose call runs past REALTIME_MCP_FILLER_MS says a filler: a
    message item after the call item, with its audio, valid for the SDK; the answer's
    prompt has it as what the assistant said before calling; it is stored so."""
    llm = FakeToolLLM([call("slow", {}), ["It is done."]])
    filling.use(fake_services(llm=llm))
    session_id = await filling.new_session()
    async with sdk(filling).realtime.connect(
            model="llm", extra_query={"session_id": session_id}) as conn:
        await with_tools(conn, SPOKEN, mcp_tool(tools_server.url, require_approval="never"))
        first = await ask(conn, "Can you take your time?", GA_EVENTS,
                          "conversation.item.done")
        answer = await events_until(conn, "rate_limits.updated", GA_EVENTS)
    kinds = types_of(first)
    at = kinds.index("response.mcp_call.in_progress")
    assert kinds[at + 1:at + 5] == [
        "response.output_item.added", "conversation.item.added",
        "response.content_part.added", "response.output_audio_transcript.delta"]
    assert kinds.index("response.output_audio.done") < kinds.index(
        "response.mcp_call.completed")  # said while the call ran
    by_type = {e["type"]: e for e in first}
    added = by_type["response.output_item.added"]
    assert added["output_index"] == 1 and added["item"]["role"] == "assistant"
    assert by_type["response.output_audio_transcript.done"]["transcript"] == \
        "One moment, please."
    audio = [e for e in first if e["type"] == "response.output_audio.delta"]
    assert audio and all(e["item_id"] == added["item"]["id"] for e in audio)
    assert all(e["output_index"] == 1 for e in audio)
    mcp_item, filler = by_type["response.done"]["response"]["output"]
    assert mcp_item["type"] == "mcp_call" and mcp_item["output"] == "done"
    assert filler["id"] == added["item"]["id"]
    assert filler["content"][0]["transcript"] == "One moment, please."
    assert "One moment, please." in llm.prompts[1]  # the answer knows it was said
    assert "It is done." in json.dumps(answer)
    turns, _ = await filling.runtime.conversations.list_turns(session_id)
    assert [(t.role, t.text) for t in turns][:3] == [
        ("user", "Can you take your time?"), ("assistant", "One moment, please."),
        ("tool", "done")]


async def test_a_fast_call_says_no_filler(filling, tools_server) -> None:
    llm = FakeToolLLM([call("add", {"a": 2, "b": 2}), ["Four."]])
    filling.use(fake_services(llm=llm))
    async with sdk(filling).realtime.connect(model="llm") as conn:
        await with_tools(conn, SPOKEN, mcp_tool(tools_server.url, require_approval="never"))
        first = await ask(conn, "2 + 2?", GA_EVENTS, "conversation.item.done")
        await events_until(conn, "rate_limits.updated", GA_EVENTS)
    assert "response.output_audio.delta" not in types_of(first)
    (output,) = {e["type"]: e for e in first}["response.done"]["response"]["output"]
    assert output["type"] == "mcp_call"
    assert "One moment" not in llm.prompts[1]


async def test_a_korean_conversation_is_filled_in_korean_on_the_ws_path(
        filling, tools_server) -> None:
    """The filler speaks the user's language; on /ws its message has its own item id and
    output index, and ends with output_item.done."""
    llm = FakeToolLLM([call("slow", {}), ["다 됐어요."]])
    filling.use(fake_services(llm=llm))
    session_id = await filling.new_session()
    async with filling.connect("alice", session_id) as ws:
        await ws.until("session.created")
        await ws.send("session.update", session={
            "modalities": ["text", "audio"], "turn_detection": None, "mcp_tools": [mcp_tool(
                tools_server.url, require_approval="never")]})
        await ws.until("mcp_list_tools.completed")
        first = await ws_ask(ws, "천천히 해 주세요")
        await ws.until("response.done")
    added = next(e for e in first if e["type"] == "response.output_item.added"
                 and e["item"]["type"] == "message")
    transcript = next(e for e in first if e["type"] == "response.audio_transcript.delta")
    assert transcript["delta"] == "잠시만요, 확인해 볼게요."
    assert transcript["item_id"] == added["item"]["id"] and transcript["output_index"] == 1
    done = next(e for e in first if e["type"] == "response.output_item.done"
                and e["item"]["id"] == added["item"]["id"])
    assert done["item"]["status"] == "completed"
    turns, _ = await filling.runtime.conversations.list_turns(session_id)
    assert ("assistant", "잠시만요, 확인해 볼게요.") in [(t.role, t.text) for t in turns]


async def test_a_client_secret_carries_mcp_tools_without_showing_their_secrets(
        tmp_path, tools_server) -> None:
    import httpx

    from tests.support.realtime import RealtimeClient

    async with live_server(tmp_path, auth_mode="required", admin_api_key="adm-" + "x" * 32,
                           realtime_turn_detection="server_vad") as live:
        live.use(fake_services(llm=FakeToolLLM([["Hi."]])))
        key = (await live.runtime.keys.create("alice")).secret
        session = {**MANUAL, "tools": [mcp_tool(
            tools_server.url, require_approval="never", headers={"X-Api-Key": HEADER_SECRET},
            authorization=TOKEN_SECRET)]}
        async with httpx.AsyncClient(base_url=live.base_url) as http:
            r = await http.post("/v1/realtime/client_secrets", json={"session": session},
                                headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200, r.text
        assert HEADER_SECRET not in r.text and TOKEN_SECRET not in r.text
        assert r.json()["session"]["tools"][0]["server_label"] == "calc"
        async with RealtimeClient(f"{live.ws_url}/v1/realtime", additional_headers={
                "Authorization": f"Bearer {r.json()['value']}"}) as client:
            events = await client.until("mcp_list_tools.completed")
        assert HEADER_SECRET not in json.dumps(events) and TOKEN_SECRET not in json.dumps(events)
    # the grant's session reached the MCP server with its headers
    assert tools_server.headers and all(
        h.get("x-api-key") == HEADER_SECRET and h.get("authorization") == f"Bearer {TOKEN_SECRET}"
        for h in tools_server.headers)


async def test_an_approved_slow_call_is_filled_too(filling, tools_server) -> None:
    llm = FakeToolLLM([call("slow", {}), ["It is done."]])
    filling.use(fake_services(llm=llm))
    session_id = await filling.new_session()
    async with sdk(filling).realtime.connect(
            model="llm", extra_query={"session_id": session_id}) as conn:
        await with_tools(conn, SPOKEN, mcp_tool(tools_server.url))  # approval: always
        _, request = await ask_approval(conn, "Take your time?")
        await answer_approval(conn, request)
        approved = await events_until(conn, "rate_limits.updated", GA_EVENTS)
        await events_until(conn, "rate_limits.updated", GA_EVENTS)
    ran, filler = {e["type"]: e for e in approved}["response.done"]["response"]["output"]
    assert ran["type"] == "mcp_call" and ran["output"] == "done"
    assert filler["type"] == "message" and \
        filler["content"][0]["transcript"] == "One moment, please."
    assert any(e["type"] == "response.output_audio.delta" and e["output_index"] == 1
               for e in approved)
    turns, _ = await filling.runtime.conversations.list_turns(session_id)
    assert ("assistant", "One moment, please.") in [(t.role, t.text) for t in turns]


async def test_a_cancel_stops_an_approved_call_too(live, tools_server) -> None:
    llm = FakeToolLLM([call("slow", {}), ["Never said."]])
    live.use(fake_services(llm=llm))
    async with sdk(live).realtime.connect(model="llm") as conn:
        await with_tools(conn, MANUAL, mcp_tool(tools_server.url))  # approval: always
        _, request = await ask_approval(conn, "Slowly?")
        await answer_approval(conn, request)
        done, after = await cancel_while_calling(conn)
    assert_stopped_without_answer(done, after, llm)
