"""``session.truncation`` over ``WS /v1/realtime`` with the official SDK and fake models:
the history the LLM is sent under ``auto``, ``disabled`` and ``retention_ratio``."""

from __future__ import annotations

import pytest

from tests.support.fake_voice import FakeLLM, fake_services
from tests.support.realtime import live_server
from tests.unit.protocol.test_realtime_sdk import (
    BETA_EVENTS,
    GA_EVENTS,
    ask,
    events_until,
    sdk,
)

pytestmark = pytest.mark.asyncio
MANUAL = {"type": "realtime", "output_modalities": ["text"],
          "audio": {"input": {"turn_detection": None}}}
WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima"


@pytest.fixture
async def live(tmp_path):  # type: ignore[no-untyped-def]
    # a small context: estimate_tokens counts a token per 3 bytes
    async with live_server(tmp_path, realtime_turn_detection="server_vad",
                           llm_context_tokens=400, realtime_history_turns=100) as server:
        yield server


def history_of(request: list) -> list[str]:
    """The user messages of one LLM request (its first words: "turn N")."""
    return [" ".join(m.content.split()[:2]) for m in request if m.role == "user"]


async def run_turns(live, truncation, turns: int):  # type: ignore[no-untyped-def]
    llm = FakeLLM(["Okay."])
    live.use(fake_services(llm=llm))
    replies = []
    async with sdk(live).realtime.connect(model="llm") as conn:
        await events_until(conn, "session.created", GA_EVENTS)
        await conn.session.update(session={**MANUAL, "truncation": truncation})
        (updated,) = await events_until(conn, "session.updated", GA_EVENTS)
        assert updated["session"]["truncation"] == truncation
        for n in range(turns):
            reply = await ask(conn, f"turn {n} {WORDS}", GA_EVENTS, "conversation.item.done")
            replies.append({e["type"]: e for e in reply}["response.done"]["response"])
    return llm, replies


async def test_retention_ratio_cuts_once_and_keeps_the_prefix(live) -> None:
    truncation = {"type": "retention_ratio", "retention_ratio": 0.5,
                  "token_limits": {"post_instructions": 200}}
    llm, replies = await run_turns(live, truncation, 12)
    assert all(r["status"] == "completed" for r in replies)
    firsts = [history_of(request)[0] for request in llm.requests]
    # each user turn is ~30 tokens, a reply ~6: the limit is hit once in a while, and
    # between cuts every prompt starts with the same turn (a stable prefix)
    assert firsts[0] == "turn 0"
    cuts = [i for i in range(1, len(firsts)) if firsts[i] != firsts[i - 1]]
    assert 1 <= len(cuts) <= 4
    for i in range(1, len(llm.requests)):
        if i not in cuts:  # the prompt before is a prefix of this one
            before, now = llm.requests[i - 1], llm.requests[i]
            assert [m.content for m in now[:len(before) - 1]] == \
                [m.content for m in before[:-1]]
    at_cut = history_of(llm.requests[cuts[0]])
    assert len(at_cut) < len(history_of(llm.requests[cuts[0] - 1]))


async def test_auto_keeps_todays_behaviour(live) -> None:
    llm, replies = await run_turns(live, "auto", 14)
    assert all(r["status"] == "completed" for r in replies)
    assert history_of(llm.requests[-1])[-1] == "turn 13"
    assert history_of(llm.requests[-1])[0] != "turn 0"  # 400 tokens do not hold 14


async def test_disabled_fails_the_response_once_the_context_is_full(live) -> None:
    llm, replies = await run_turns(live, "disabled", 14)
    statuses = [r["status"] for r in replies]
    full = statuses.index("failed")
    assert statuses[:full] == ["completed"] * full and full >= 3
    error = replies[full]["status_details"]["error"]
    assert "disabled" in error["message"]
    # until then the whole history went to the LLM
    assert history_of(llm.requests[-1])[0] == "turn 0"
    assert len(llm.requests) == full


async def test_beta_accepts_it_and_bad_values_are_refused_by_name(live) -> None:
    live.use(fake_services())
    async with sdk(live).beta.realtime.connect(model="llm") as conn:
        await events_until(conn, "session.created", BETA_EVENTS)
        await conn.session.update(session={"truncation": "disabled"})
        (updated,) = await events_until(conn, "session.updated", BETA_EVENTS)
        assert updated["session"]["truncation"] == "disabled"
    async with sdk(live).realtime.connect(model="llm") as conn:
        await events_until(conn, "session.created", GA_EVENTS)
        for bad, param in [
                ("sometimes", "session.truncation"),
                ({"type": "retention_ratio", "retention_ratio": 2},
                 "session.truncation.retention_ratio")]:
            await conn.send({"type": "session.update",
                             "session": {"type": "realtime", "truncation": bad}})
            (error,) = await events_until(conn, "error", GA_EVENTS)
            assert error["error"]["param"] == param
