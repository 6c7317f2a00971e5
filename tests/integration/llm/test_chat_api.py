"""/v1/chat/completions and /v1/models over the real Triton (tiny model, version 1), the
official openai SDK on real weights, bad parameters and LLM_ENABLED=false."""

from __future__ import annotations

import dataclasses
import json

import pytest

from tests.integration.llm.conftest import TINY_VERSION

pytestmark = [pytest.mark.triton, pytest.mark.asyncio]

MODEL = f"llm:{TINY_VERSION}"
HELLO = [{"role": "user", "content": "안녕하세요 😀"}]


def sse_events(body: str) -> list:
    events = [line[len("data: "):] for line in body.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    return [json.loads(e) for e in events[:-1]]


async def test_completion_and_stream_agree(llm_client) -> None:
    body = {"model": MODEL, "messages": HELLO, "max_tokens": 12, "temperature": 0}
    r = await llm_client.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["object"] == "chat.completion"
    choice = done["choices"][0]
    usage = done["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert choice["finish_reason"] in {"stop", "length"}

    r = await llm_client.post("/v1/chat/completions",
                              json={**body, "stream": True,
                                    "stream_options": {"include_usage": True}})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events if e["choices"])
    assert text == choice["message"]["content"]
    assert events[-2]["choices"][0]["finish_reason"] == choice["finish_reason"]
    streamed_usage = events[-1]["usage"]
    assert events[-1]["choices"] == []
    assert {k: v for k, v in streamed_usage.items() if k != "prompt_tokens_details"} == {
        k: v for k, v in usage.items() if k != "prompt_tokens_details"}
    # the same prompt again: all but its last token come from the first request's KV cache
    assert streamed_usage["prompt_tokens_details"] == {
        "cached_tokens": usage["prompt_tokens"] - 1}


async def test_models_lists_served_versions(llm_client) -> None:
    r = await llm_client.get("/v1/models")
    assert r.status_code == 200
    ids = {m["id"]: m for m in r.json()["data"]}
    assert str(TINY_VERSION) in ids["llm"]["versions"]
    assert MODEL in ids


@pytest.mark.parametrize(("patch", "needle"), [
    ({"max_tokens": -1}, "max_tokens"),
    ({"max_tokens": 10**9}, "max_tokens"),
    ({"max_tokens": "ten"}, "max_tokens"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, "role"),
    ({"messages": [{"role": "user", "content": 42}]}, "content"),
    ({"messages": "hello"}, "messages"),
    ({"temperature": 5}, "temperature"),
    ({"top_p": 0}, "top_p"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"n": 2}, "n"),
    ({"seed": -1}, "seed"),
    ({"seed": 2**64}, "seed"),
    ({"model": "gpt-4"}, "gpt-4"),
])
async def test_bad_parameters_are_clear_4xx(llm_client, patch: dict, needle: str) -> None:
    body = {"model": MODEL, "messages": HELLO, **patch}
    r = await llm_client.post("/v1/chat/completions", json=body)
    assert r.status_code == (404 if needle == "gpt-4" else 400), r.text
    error = r.json()["error"]
    assert needle in error["message"]
    assert error["code"] in {"invalid_request", "not_found"}


@pytest.mark.parametrize(("patch", "param"), [
    # The tiny model's ChatML template has no tools: function calling is a 400 there.
    ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}]},
     "messages[1].tool_calls"),
    ({"tools": [{"type": "function", "function": {"name": "f", "strict": True}}]},
     "tools[0].function.strict"),
    ({"functions": [{"name": "f"}]}, "functions"),
    ({"tools": [{"type": "function", "function": {"name": "rm -rf /; <script>"}}]},
     "tools[0].function.name"),
    ({"tool_choice": {"type": "function", "function": {"name": "x" * 65}}},
     "tool_choice.function.name"),
    ({"messages": [{"role": "tool", "content": "{}"}]}, "messages[0].tool_call_id"),
    ({"messages": [{"role": "user"}]}, "messages[0].content"),
    ({"response_format": {"type": "json_object"}}, "response_format.type"),
    ({"logprobs": True}, "logprobs"),
    ({"top_logprobs": 3}, "top_logprobs"),
    ({"logit_bias": {"50256": -100}}, "logit_bias"),
    ({"presence_penalty": 0.5}, "presence_penalty"),
    ({"frequency_penalty": 1}, "frequency_penalty"),
    ({"modalities": ["text", "audio"]}, "modalities"),
    ({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
    ({"store": True}, "store"),
    ({"metadata": {"a": "b"}}, "metadata"),
    ({"reasoning_effort": "low"}, "reasoning_effort"),
    ({"service_tier": "flex"}, "service_tier"),
    ({"messages": [{"role": "user", "content": "hi", "name": "ann"}]}, "messages[0].name"),
    ({"messages": [{"role": "tool", "content": "{}", "tool_call_id": "c1"}]},
     "messages[0].role"),
    ({"frobnicate": 1}, "frobnicate"),
    ({"stream_options": {"include_usage": True, "x": 1}}, "stream_options.x"),
    ({"n": 2}, "n"),
])
async def test_openai_fields_not_honoured_are_refused_by_name(llm_client, patch: dict,
                                                            param: str) -> None:
    r = await llm_client.post("/v1/chat/completions",
                              json={"model": MODEL, "messages": HELLO, **patch})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param, error
    assert error["type"] == "invalid_request_error"


async def test_no_op_values_of_unhonoured_fields_are_accepted(llm_client) -> None:
    body = {"model": MODEL, "messages": HELLO, "max_tokens": 2, "tools": [],
            "tool_choice": "none", "logprobs": False, "presence_penalty": 0,
            "frequency_penalty": 0.0, "response_format": {"type": "text"}, "store": False,
            "service_tier": "auto", "user": "end-user-7", "prompt_cache_key": "conv-1"}
    r = await llm_client.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text


async def test_stream_sends_usage_only_when_asked(llm_client) -> None:
    body = {"model": MODEL, "messages": HELLO, "max_tokens": 4, "stream": True}
    events = sse_events((await llm_client.post("/v1/chat/completions", json=body)).text)
    assert all("usage" not in e for e in events)
    assert all(e["object"] == "chat.completion.chunk" for e in events)


async def test_one_model_by_id(llm_client) -> None:
    r = await llm_client.get(f"/v1/models/{MODEL}")
    assert r.status_code == 200, r.text
    assert r.json() == {"id": MODEL, "created": 0, "owned_by": "voicechat",
                        "object": "model", "versions": []}
    assert (await llm_client.get("/v1/models/llm")).json()["versions"]
    missing = await llm_client.get("/v1/models/gpt-4")
    assert missing.status_code == 404 and missing.json()["error"]["param"] == "model"


async def test_llm_disabled_is_503(llm_settings) -> None:
    from litestar.testing import AsyncTestClient

    from orchestrator.app import create_app

    settings = dataclasses.replace(llm_settings, llm_enabled=False)
    async with AsyncTestClient(app=create_app(settings)) as client:
        r = await client.post("/v1/chat/completions", json={"messages": HELLO})
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "service_disabled"
        assert "LLM_ENABLED" in r.json()["error"]["message"]


@pytest.mark.realweights
@pytest.mark.slow
async def test_openai_sdk_streams_paris(smollm2: str, live_server: str) -> None:
    import openai

    client = openai.AsyncOpenAI(base_url=f"{live_server}/v1", api_key="unused")
    stream = await client.chat.completions.create(
        model=smollm2, stream=True, temperature=0, max_tokens=40,
        messages=[{"role": "user", "content": "What is the capital of France?"}])
    parts, finish = [], None
    async for chunk in stream:
        if chunk.choices:
            parts.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
    assert "Paris" in "".join(parts)
    assert finish in {"stop", "length"}
    models = await client.models.list()
    assert smollm2 in [m.id for m in models.data]
    await client.close()
