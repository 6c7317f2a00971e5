"""The llm Triton model, exported at test time from a tiny random Llama: exact greedy
tokens against transformers, stop sequences, cancellation, bad inputs."""

from __future__ import annotations

import asyncio
import json
import re
import uuid

import pytest

from export.specs import llm as spec
from orchestrator.chat.service import ChatMessage, ChatService, SamplingParams
from orchestrator.errors import InferenceInvalidInput
from orchestrator.inference.client import TritonClient
from orchestrator.request_context import reset_request_id, set_request_id
from tests.integration.llm.conftest import TINY_VERSION

pytestmark = [pytest.mark.triton, pytest.mark.asyncio]

PROMPTS = ["What is the capital of France?", "안녕하세요 😀", "The sea"]
GREEDY = SamplingParams(max_tokens=24, temperature=0.0, version=str(TINY_VERSION))


@pytest.fixture
async def chat(triton_server, tiny_llm) -> ChatService:  # type: ignore[no-untyped-def]
    client = TritonClient(triton_server.grpc_url, timeout_s=120)
    yield ChatService(client)
    await client.close()


def transformers_greedy(model_dir, prompt: str | list[dict], max_new_tokens: int  # type: ignore[no-untyped-def]
                        ) -> tuple[str, int]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    ids = tokenizer(ids, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                             max_new_tokens=max_new_tokens)
    new = out[0, ids.shape[1]:].tolist()
    if new and new[-1] == tokenizer.eos_token_id:
        new = new[:-1]
    # a reply cut inside a multi-byte character drops that partial character (no U+FFFD)
    return tokenizer.decode(new, skip_special_tokens=True).rstrip("\ufffd"), len(new)


@pytest.mark.parametrize("prompt", PROMPTS)
async def test_greedy_tokens_equal_transformers(chat: ChatService, tiny_llm, prompt: str
                                                ) -> None:
    chunks = [c async for c in chat.stream([ChatMessage("user", prompt)], GREEDY)]
    expected_text, expected_tokens = transformers_greedy(tiny_llm, prompt, GREEDY.max_tokens)
    final = chunks[-1]
    assert final.finish_reason in {"stop", "length"}
    assert all(c.finish_reason is None for c in chunks[:-1])
    assert "".join(c.text for c in chunks) == expected_text
    assert final.completion_tokens == expected_tokens
    assert final.finish_reason == ("length" if expected_tokens == GREEDY.max_tokens
                                   else "stop")
    assert final.prompt_tokens > 5


async def test_follow_up_turn_reuses_the_cached_prefix(chat: ChatService, tiny_llm) -> None:
    system = ChatMessage("system", "You are a helpful voice assistant. Answer briefly. " * 3)
    first = [system, ChatMessage("user", "What is the capital of France?")]
    turn1 = await chat.complete(first, GREEDY)
    second = [*first, ChatMessage("assistant", turn1.text), ChatMessage("user", "The sea")]
    turn2 = await chat.complete(second, GREEDY)
    # the whole first prompt comes from turn 1's KV cache; only the rest is computed
    assert turn2.cached_tokens >= turn1.prompt_tokens
    assert turn2.prompt_tokens > turn2.cached_tokens
    # and reusing it changes nothing: the reply is transformers' from scratch
    expected, _ = transformers_greedy(
        tiny_llm, [{"role": m.role, "content": m.content} for m in second], GREEDY.max_tokens)
    assert turn2.text == expected


async def test_a_prefill_of_the_words_so_far_is_reused_by_the_whole_turn(
        chat: ChatService, tiny_llm) -> None:
    """What a realtime session does while the user speaks: the prompt with the partial
    transcript is prefilled; the reply to the whole turn then reads only what differs."""
    from transformers import AutoTokenizer

    tag = uuid.uuid4().hex[:8]  # no other test's pooled prompt shares this one's start
    history = [ChatMessage("system", f"Session {tag}. Answer briefly."),
               ChatMessage("user", "Tell me about the sea."),
               ChatMessage("assistant", "It is large and deep.")]
    partial = [*history, ChatMessage("user", "And what about the")]
    whole = [*history, ChatMessage("user", "And what about the mountains near Seoul?")]
    prefilled = await chat.prefill(partial, GREEDY)
    assert prefilled.completion_tokens <= 1  # one token at most, dropped
    reply = await chat.complete(whole, GREEDY)
    tokenizer = AutoTokenizer.from_pretrained(tiny_llm)

    def ids(messages: list[ChatMessage]) -> list[int]:
        text = tokenizer.apply_chat_template([{"role": m.role, "content": m.content}
                                              for m in messages],
                                             add_generation_prompt=True, tokenize=False)
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    a, b = ids(partial), ids(whole)
    shared = next(i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y)
    assert prefilled.prompt_tokens == len(a) and reply.prompt_tokens == len(b)
    # everything up to the first token where the words so far and the whole turn differ
    assert reply.cached_tokens == shared
    # which holds all the words said so far
    assert tokenizer.decode(b[:shared]).rstrip().endswith("And what about the")
    # and the reply is exactly the one from scratch
    expected, _ = transformers_greedy(
        tiny_llm, [{"role": m.role, "content": m.content} for m in whole], GREEDY.max_tokens)
    assert reply.text == expected


async def test_stop_sequence_cuts_the_reply(chat: ChatService) -> None:
    messages = [ChatMessage("user", PROMPTS[0])]
    full = await chat.complete(messages, GREEDY)
    assert len(full.text) > 6
    stop = full.text[3:6]
    cut = await chat.complete(messages, SamplingParams(
        max_tokens=24, temperature=0.0, stop=(stop,), version=str(TINY_VERSION)))
    assert cut.finish_reason == "stop"
    assert cut.text == full.text[:full.text.index(stop)]


async def test_seeded_sampling_is_reproducible(chat: ChatService) -> None:
    params = SamplingParams(max_tokens=16, temperature=1.2, top_p=0.9, top_k=50,
                            repetition_penalty=1.3, seed=7, version=str(TINY_VERSION))
    messages = [ChatMessage("user", "hello")]
    first = await chat.complete(messages, params)
    second = await chat.complete(messages, params)
    assert first == second


@pytest.mark.realweights
async def test_cancelled_stream_stops_and_frees_the_model(chat: ChatService, smollm2: str,
                                                          triton_server) -> None:
    # The real SmolLM2, not the tiny model: the tiny one writes its whole 512-token
    # context in a fraction of a second, so on a loaded machine the stream could end
    # before the cancellation reached it and the test raced instead of proving anything.
    real = smollm2.split(":")[1]
    long = SamplingParams(max_tokens=1500, temperature=0.0, version=real)
    messages = [ChatMessage("user", "Count from 1 to 1000, one number per line.")]
    request_id = f"cancel-{uuid.uuid4().hex[:8]}"
    token = set_request_id(request_id)  # ChatService passes it on as the Triton request id
    received = 0
    try:
        async for chunk in chat.stream(messages, long):
            received += 1
            assert chunk.finish_reason is None
            if received == 3:
                break  # leaving the loop cancels the gRPC stream
    finally:
        reset_request_id(token)
    pattern = re.compile(rf"llm: request '{request_id}' cancelled after (\d+) tokens")
    found = None
    for _ in range(200):  # the cancelled stream ends within a decoding step of the cancel
        found = pattern.findall(triton_server.log_path.read_text(errors="replace"))
        if found:
            break
        await asyncio.sleep(0.05)
    assert found and len(found) == 1, "the model never reported the cancellation"
    # counting to 1000 takes thousands of tokens: stopping this early is the cancellation
    assert 3 <= int(found[0]) < 300
    # the next request is served (and completes), from the cancelled stream's pooled cache:
    # a barged-in reply's next turn does not prefill its prompt again
    after = await chat.complete(messages, SamplingParams(max_tokens=8, temperature=0.0,
                                                         version=real))
    assert after.finish_reason == "length" and after.completion_tokens == 8
    assert after.cached_tokens == after.prompt_tokens - 1


async def test_concurrent_streams_all_complete(chat: ChatService) -> None:
    params = SamplingParams(max_tokens=20, temperature=0.0, version=str(TINY_VERSION))
    results = await asyncio.gather(*[chat.complete([ChatMessage("user", p)], params)
                                     for p in PROMPTS * 2])
    assert [r.text for r in results[:3]] == [r.text for r in results[3:]]


@pytest.mark.parametrize(("values", "message"), [
    ({spec.MESSAGES: ["not json"]}, "invalid messages"),
    ({spec.MESSAGES: [json.dumps([{"role": "robot", "content": "x"}])]}, "role"),
    ({spec.MESSAGES: ["[]"], spec.PROMPT: ["x"]}, "exactly one"),
    ({spec.PROMPT: ["hi"], spec.MAX_TOKENS: [0]}, "max_tokens"),
    ({spec.PROMPT: ["hi"], spec.TOP_P: [1.5]}, "top_p"),
    ({spec.PROMPT: ["hi"], spec.STOP: ['"x"']}, "stop"),
    ({spec.PROMPT: ["word " * 600]}, "context window"),
])
async def test_bad_inputs_are_invalid_argument_errors(triton_server, tiny_llm, values,
                                                      message: str) -> None:
    client = TritonClient(triton_server.grpc_url)
    try:
        with pytest.raises(InferenceInvalidInput, match=message):
            async for _ in client.stream(spec.SPEC, values, version=str(TINY_VERSION)):
                pass
    finally:
        await client.close()



async def test_streams_that_join_a_decoding_batch_equal_transformers(
        chat: ChatService, tiny_llm) -> None:
    """A long reply decodes while two more streams arrive, are prefilled and join its
    batch, then leave it: each of the short ones is still transformers' greedy reply, and
    the long one is the reply it gives alone."""
    long = SamplingParams(max_tokens=400, temperature=0.0, version=str(TINY_VERSION))
    tag = uuid.uuid4().hex[:8]  # no pooled prompt shares its start
    long_prompt = [ChatMessage("user", f"{tag}: tell me a long story about the sea")]
    finished: list[str] = []
    started = asyncio.Event()

    async def long_reply() -> str:
        text = ""
        async for chunk in chat.stream(long_prompt, long):
            text += chunk.text
            started.set()
        finished.append("long")
        return text

    async def short_reply(prompt: str) -> str:
        await started.wait()
        reply = await chat.complete([ChatMessage("user", prompt)], GREEDY)
        finished.append(prompt)
        return reply.text

    together, *short = await asyncio.gather(long_reply(), *map(short_reply, PROMPTS[:2]))
    assert finished[-1] == "long", "the short replies did not decode beside the long one"
    for prompt, text in zip(PROMPTS[:2], short, strict=True):
        assert text == transformers_greedy(tiny_llm, prompt, GREEDY.max_tokens)[0]
    alone = await chat.complete(long_prompt, long)
    assert len(alone.text) > 100 and together == alone.text


@pytest.fixture
def generator_per_stream(triton_server, tiny_llm):  # type: ignore[no-untyped-def]
    """``llm`` reloaded with batch decoding off (what a GPU instance runs), then back."""
    from export.repository import ModelRepository
    from tests.support import triton as triton_support

    versions = ModelRepository(triton_server.repository).versions("llm")
    triton_support.load(triton_server, "llm", config=json.dumps(spec.SPEC.config_json(
        versions=versions, parameters={"batch_decoding": "false"})))
    yield
    triton_support.load(triton_server, "llm", config=json.dumps(spec.SPEC.config_json(
        versions=versions)))


async def test_a_generator_per_stream_when_batch_decoding_is_off(
        generator_per_stream, chat: ChatService, tiny_llm, triton_server) -> None:
    log = triton_server.log_path.read_text(errors="replace")
    assert log.rindex(f"llm version {TINY_VERSION}: a GenAI generator per stream") > log.rindex(
        f"llm version {TINY_VERSION}: one decode step for every live stream")
    results = await asyncio.gather(*[chat.complete([ChatMessage("user", p)], GREEDY)
                                     for p in PROMPTS])
    for prompt, result in zip(PROMPTS, results, strict=True):
        assert result.text == transformers_greedy(tiny_llm, prompt, GREEDY.max_tokens)[0]
    follow_up = await chat.complete([ChatMessage("user", PROMPTS[0])], GREEDY)
    assert follow_up.cached_tokens == follow_up.prompt_tokens - 1  # GenAI's pool
    assert follow_up.text == results[0].text
