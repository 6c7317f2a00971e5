"""The batched decoder's bookkeeping, on a stand-in graph with the builder's contract.

The stand-in's "model" makes each row's next token the sum of every token in that row's
cache (mod 63), so a row that read another row's cache, a mask padded on the wrong side or
a pooled cache holding the wrong tokens all give other tokens than the reference. The
real graph's numbers are tested against transformers in
tests/integration/llm/test_llm_model.py."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from export.llm.batched import END, BatchedDecoder, GraphLayout, unsupported_reason
from export.llm.generation import SamplingConfig
from export.llm.sampling import Sampler

VOCAB, EOS, FAIL = 64, 63, 62
LAYOUT = GraphLayout([f"past.{i}.{k}" for i in range(2) for k in ("key", "value")],
                     [f"present.{i}.{k}" for i in range(2) for k in ("key", "value")],
                     kv_heads=2, head_size=4)


def reference(prompt: list[int], n: int) -> list[int]:
    tokens, out = list(prompt), []
    for _ in range(n):
        out.append(sum(tokens) % EOS)
        tokens.append(out[-1])
    return out


class StandIn:
    """The builder's graph contract: right-padded rows, each with its own length."""

    def __init__(self, step_s: float = 0.003) -> None:
        self.step_s = step_s
        self.batch_sizes: list[int] = []
        self.runs: list[tuple[int, int]] = []
        """(rows, new tokens per row) of every run."""

    def get_inputs(self) -> list:
        names = ["input_ids", "attention_mask", *LAYOUT.past_names]
        return [SimpleNamespace(name=n, type="tensor(float)") for n in names]

    def run(self, names: list[str], feeds: dict) -> list[np.ndarray]:
        time.sleep(self.step_s)
        ids, mask = feeds["input_ids"], feeds["attention_mask"]
        past = [feeds[n] for n in LAYOUT.past_names]
        rows, new = ids.shape
        if new > 1 and FAIL in ids:
            raise RuntimeError("the graph failed")
        self.batch_sizes.append(rows)
        self.runs.append((rows, new))
        lengths = mask.sum(axis=1)
        present = [np.zeros((rows, 2, mask.shape[1], 4), np.float32) for _ in past]
        logits = np.zeros((rows, 1, VOCAB), np.float32)
        for b in range(rows):
            assert mask[b, :lengths[b]].all(), "a row's mask must be ones, then zeros"
            held = lengths[b] - new
            for before, after in zip(past, present, strict=True):
                after[b, :, :held] = before[b, :, :held]
                after[b, :, held:held + new, 0] = ids[b]
            logits[b, 0, int(present[0][b, 0, :lengths[b], 0].sum()) % EOS] = 1.0
        assert names == ["logits", *LAYOUT.present_names]
        return [logits, *present]


@pytest.fixture
def graph() -> StandIn:
    return StandIn()


@pytest.fixture
def decoder(graph: StandIn):  # type: ignore[no-untyped-def]
    decoder = BatchedDecoder(graph, LAYOUT, [EOS], pool_capacity=4)
    yield decoder
    decoder.close()


def greedy() -> Sampler:
    return Sampler(SamplingConfig(temperature=0.0))


def collect(stream, timeout_s: float = 5.0) -> list[int]:  # type: ignore[no-untyped-def]
    tokens = []
    while (token := stream.get(timeout_s)) != END:
        assert token is not None, "the stream stalled"
        tokens.append(token)
    return tokens


def test_one_stream_is_the_reference(decoder: BatchedDecoder) -> None:
    stream = decoder.start([3, 1, 4, 1, 5], 12, greedy())
    assert collect(stream) == reference([3, 1, 4, 1, 5], 12)
    assert stream.cached_tokens == 0


def test_streams_that_join_and_leave_a_batch_each_get_their_own_tokens(
        decoder: BatchedDecoder, graph: StandIn) -> None:
    long = decoder.start([9] * 20, 60, greedy())
    first = [long.get(5.0) for _ in range(3)]
    prompts = [[2, 7] * 8, [5], [1, 2, 3] * 11]
    joined = [decoder.start(p, 10 + 5 * i, greedy()) for i, p in enumerate(prompts)]
    results = [collect(s) for s in joined]
    assert first + collect(long) == reference([9] * 20, 60)
    for i, (prompt, tokens) in enumerate(zip(prompts, results, strict=True)):
        assert tokens == reference(prompt, 10 + 5 * i)
    assert max(graph.batch_sizes) == 4  # they really were decoded together


def test_a_long_prompt_is_prefilled_in_pieces_while_others_decode(
        decoder: BatchedDecoder, graph: StandIn) -> None:
    from export.llm.batched import PREFILL_CHUNK

    talking = decoder.start([6] * 8, 10_000, greedy())
    assert talking.get(5.0) is not None
    graph.runs.clear()
    prompt = [(i * 7) % 50 for i in range(PREFILL_CHUNK * 3 + 5)]
    assert collect(decoder.start(prompt, 5, greedy())) == reference(prompt, 5)
    talking.stop()
    collect(talking)
    pieces = [i for i, (rows, new) in enumerate(graph.runs) if new > 1]
    assert [graph.runs[i][1] for i in pieces] == [PREFILL_CHUNK] * 3 + [5]
    # the talking stream took a step between every two pieces
    assert all(graph.runs[i + 1] == (1, 1) for i in pieces[:-1])
    # and alone, a prompt is prefilled at once
    graph.runs.clear()
    assert collect(decoder.start(prompt[::-1], 2, greedy())) == reference(prompt[::-1], 2)
    assert graph.runs[0] == (1, len(prompt))


def test_a_pooled_cache_serves_the_next_turn(decoder: BatchedDecoder) -> None:
    neighbour = decoder.start([8] * 12, 10_000, greedy())  # the batch's first row
    assert neighbour.get(5.0) is not None
    prompt = [4, 4, 8, 1, 6, 2, 3, 9, 9, 1]
    turn1 = collect(decoder.start(prompt, 8, greedy()))
    # the next turn: the first turn, its reply, and a new question
    prompt2 = [*prompt, *turn1, 5, 5, 6]
    stream = decoder.start(prompt2, 6, greedy())
    assert collect(stream) == reference(prompt2, 6)
    # every token the first stream fed back: all but its last, never fed
    assert stream.cached_tokens == len(prompt) + len(turn1) - 1
    neighbour.stop()


def test_a_request_that_must_reproduce_its_draws_starts_from_scratch(
        decoder: BatchedDecoder) -> None:
    prompt = list(range(1, 13))
    collect(decoder.start(prompt, 4, greedy()))
    stream = decoder.start(prompt, 4, greedy(), reuse=False)
    assert collect(stream) == reference(prompt, 4) and stream.cached_tokens == 0


def test_a_stopped_stream_ends_and_the_others_go_on(decoder: BatchedDecoder) -> None:
    stopped = decoder.start([1] * 10, 500, greedy())
    other = decoder.start([2] * 10, 40, greedy())
    assert stopped.get(5.0) is not None
    stopped.stop()
    assert len(collect(stopped)) < 500
    assert collect(other) == reference([2] * 10, 40)


def test_end_of_sequence_ends_a_stream() -> None:
    decoder = BatchedDecoder(StandIn(), LAYOUT, [reference([7, 7], 3)[2]], pool_capacity=0)
    try:
        assert collect(decoder.start([7, 7], 50, greedy())) == reference([7, 7], 3)
    finally:
        decoder.close()


def test_a_failed_prefill_fails_its_stream_only(decoder: BatchedDecoder) -> None:
    other = decoder.start([3] * 10, 30, greedy())
    failing = decoder.start([FAIL, FAIL, 1], 5, greedy())
    with pytest.raises(RuntimeError, match="the graph failed"):
        collect(failing)
    assert collect(other) == reference([3] * 10, 30)
    assert collect(decoder.start([5, 6], 3, greedy())) == reference([5, 6], 3)


def test_a_fault_in_the_decoding_thread_ends_its_streams_and_not_the_decoder(
        decoder: BatchedDecoder) -> None:
    class Broken(Sampler):
        def next_token(self, logits, seen):  # type: ignore[no-untyped-def]
            if len(seen) > 12:
                raise ValueError("a sampler fault")
            return super().next_token(logits, seen)

    streams = [decoder.start([1] * 10, 50, Broken(SamplingConfig(temperature=0.0))),
               decoder.start([2] * 10, 50, greedy())]
    for stream in streams:
        with pytest.raises(ValueError, match="a sampler fault"):
            collect(stream)
    assert collect(decoder.start([5, 6], 3, greedy())) == reference([5, 6], 3)


def test_closing_ends_every_stream(graph: StandIn) -> None:
    graph.step_s = 0.02
    decoder = BatchedDecoder(graph, LAYOUT, [EOS], pool_capacity=0)
    streams = [decoder.start([i + 1] * 5, 10_000, greedy()) for i in range(3)]
    assert streams[0].get(5.0) is not None
    closer = threading.Thread(target=decoder.close)
    closer.start()
    for stream in streams:
        collect(stream)  # each ends (END), none stalls
    closer.join(5.0)
    with pytest.raises(RuntimeError, match="unloading"):
        decoder.start([1], 1, greedy())


def test_a_graph_with_inputs_it_cannot_fill_is_left_to_genai() -> None:
    class WithPositions(StandIn):
        def get_inputs(self) -> list:
            return [*super().get_inputs(), SimpleNamespace(name="position_ids", type="")]

    assert "position_ids" in unsupported_reason(WithPositions(), LAYOUT)
    assert unsupported_reason(StandIn(), LAYOUT) is None


def test_the_decoder_in_force_reads_the_config_unless_the_environment_overrides_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from export.specs import llm as spec

    monkeypatch.delenv(spec.BATCH_DECODING_OVERRIDE, raising=False)
    assert spec.batch_decoding() is True  # the spec's default
    assert spec.batch_decoding(False) is False
    assert spec.batch_decoding("false") is False
    monkeypatch.setenv(spec.BATCH_DECODING_OVERRIDE, "0")
    assert spec.batch_decoding(True) is False
    monkeypatch.setenv(spec.BATCH_DECODING_OVERRIDE, "yes")
    assert spec.batch_decoding(False) is True
    monkeypatch.setenv(spec.BATCH_DECODING_OVERRIDE, "sometimes")
    with pytest.raises(ValueError, match="sometimes"):
        spec.batch_decoding()
