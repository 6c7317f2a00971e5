"""First tokens first (export/llm/priority.py): a stream's first tokens go before the
continuation of another, with real threads standing in for GenAI's decode steps."""

from __future__ import annotations

import threading
import time

from export.llm.priority import FirstTokensFirst

STEP_S = 0.002


def _stream(gate: FirstTokensFirst, name: str, tokens: int, log: list[str],
            started: threading.Event | None = None) -> None:
    ticket = gate.begin()
    try:
        for generated in range(tokens):
            gate.step(ticket, generated)
            time.sleep(STEP_S)  # the decode step
            log.append(name)
            if started is not None and generated == 20:
                started.set()
    finally:
        gate.end(ticket)


def _run(urgent_tokens: int) -> list[str]:
    gate, log, started = FirstTokensFirst(urgent_tokens, max_wait_s=5.0), [], threading.Event()
    long_reply = threading.Thread(target=_stream, args=(gate, "A", 400, log, started))
    long_reply.start()
    started.wait(5)  # A is past its own first 16 tokens: a continuation now
    new_turn = threading.Thread(target=_stream, args=(gate, "B", 30, log))
    new_turn.start()
    new_turn.join(10)
    long_reply.join(10)
    return log


def test_a_new_turns_first_tokens_come_before_another_replys_continuation() -> None:
    log = _run(urgent_tokens=16)
    first_b = log.index("B")
    # B's first 16 tokens are all decoded before A takes another step (at most the one
    # step A was already in when B arrived)
    window = log[first_b:first_b + 16]
    assert window.count("B") >= 15, window
    assert log.count("A") == 400 and log.count("B") == 30  # nothing lost, nothing starved
    # after its first tokens B is a continuation too: the two take turns again
    assert log[first_b + 17:first_b + 31].count("A") >= 4


def test_off_the_streams_take_turns() -> None:
    log = _run(urgent_tokens=0)
    first_b = log.index("B")
    assert log[first_b:first_b + 16].count("A") >= 4  # interleaved, as before the gate


def test_a_continuation_waits_at_most_max_wait_s_for_a_stream_that_stays_urgent() -> None:
    gate = FirstTokensFirst(urgent_tokens=10**6, max_wait_s=0.05)
    stuck = gate.begin()  # an urgent stream that never produces its first tokens
    other = gate.begin()
    gate.end(other)  # settled: now a continuation
    started = time.perf_counter()
    gate.step(other, generated=100)
    assert 0.04 <= time.perf_counter() - started < 1.0 and other.waited_s >= 0.04
    gate.end(stuck)
    started = time.perf_counter()
    gate.step(other, generated=101)  # nobody urgent: no wait
    assert time.perf_counter() - started < 0.04
