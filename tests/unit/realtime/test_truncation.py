"""``session.truncation``'s cut (:mod:`orchestrator.realtime.truncation`): which turns a
``retention_ratio`` prompt keeps, and that the kept prefix stays put until the limit."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import msgspec
import pytest

from orchestrator.chat.prompt import HistoryCursor
from orchestrator.errors import InvalidRequest
from orchestrator.realtime.protocol.session_types import RetentionRatio, SessionUpdate, TokenLimits
from orchestrator.realtime.truncation import keep_history, post_instructions_limit, retention_start


def test_nothing_is_cut_while_the_conversation_fits() -> None:
    cursor = HistoryCursor()
    assert retention_start([1, 2, 3], [10, 10, 10], limit=100, ratio=0.5,
                           cursor=cursor) == 0
    assert cursor.since == 1


def test_one_cut_keeps_the_ratio_then_the_prefix_stays_until_the_limit() -> None:
    cursor, ids, costs = HistoryCursor(), [], []
    starts = []
    for turn in range(1, 21):  # 20 turns of 10 tokens, a limit of 100, keep 0.5
        ids.append(turn)
        costs.append(10)
        start = retention_start(ids, costs, limit=100, ratio=0.5, cursor=cursor)
        starts.append(ids[start])
    # turns 1..10 fit (100 tokens); the 11th exceeds: one cut to the newest 50 tokens
    # (turns 7..11), which stay the prompt's first turn until it exceeds the limit again
    assert starts[:10] == [1] * 10
    assert starts[10:16] == [7] * 6  # 7..16 is 100 tokens
    assert starts[16] == 13  # 7..17 is 110: cut to 13..17
    assert starts[16:] == [13] * 4


def test_the_pending_user_message_counts_and_a_turn_too_big_is_dropped() -> None:
    cursor = HistoryCursor()
    # 30 + 30 + 30 + reserved 20 = 110 > 100: keep 0.6 * 100 - 20 = 40: the newest turn
    assert retention_start([1, 2, 3], [30, 30, 30], limit=100, ratio=0.6, cursor=cursor,
                           reserved=20) == 2
    assert cursor.since == 3
    cursor = HistoryCursor()
    assert retention_start([1, 2], [500, 500], limit=100, ratio=0.5, cursor=cursor) == 2
    assert cursor.since == 3  # the next prompt starts after them


def turn(turn_id: int, text: str) -> Any:
    return SimpleNamespace(id=turn_id, text=text, tool_calls=None)


class Builder:
    budget_tokens = 200

    @staticmethod
    def count_tokens(text: str) -> int:
        return len(text.split())


def test_keep_history_per_mode() -> None:
    history = [turn(i, "word " * 11) for i in range(1, 11)]  # 15 tokens each
    common = {"instructions": "be brief", "user_text": "hi", "output_tokens": 50}
    assert keep_history(Builder(), history, "auto", cursor=HistoryCursor(), **common) \
        == history
    assert keep_history(Builder(), history, "disabled", cursor=HistoryCursor(),
                        **common) == history
    with pytest.raises(InvalidRequest) as refused:
        keep_history(Builder(), history * 2, "disabled", cursor=HistoryCursor(), **common)
    assert refused.value.param == "session.truncation"
    assert "disabled" in str(refused.value)
    # default limit: 200 - 50 = 150 tokens; 10 turns + "hi" = 155: keep 0.4 * 150 - 5 = 55
    ratio = RetentionRatio(retention_ratio=0.4)
    kept = keep_history(Builder(), history, ratio, cursor=HistoryCursor(), **common)
    assert [t.id for t in kept] == [8, 9, 10]
    limits = RetentionRatio(retention_ratio=1.0, token_limits=TokenLimits(80))
    kept = keep_history(Builder(), history, limits, cursor=HistoryCursor(), **common)
    assert [t.id for t in kept] == [6, 7, 8, 9, 10]


def test_limits() -> None:
    mode = RetentionRatio(retention_ratio=0.5, token_limits=TokenLimits(5000))
    assert post_instructions_limit(mode, 2048, 256, 100) == 1948  # capped by the context
    assert post_instructions_limit(RetentionRatio(retention_ratio=0.5), 2048, 256) == 1792


@pytest.mark.parametrize(("value", "where"), [
    ({"type": "retention_ratio", "retention_ratio": 1.5}, "truncation.retention_ratio"),
    ({"type": "retention_ratio"}, "truncation"),
    ({"type": "retention_ratio", "retention_ratio": 0.5,
      "token_limits": {"post_instructions": 0}}, "truncation.token_limits.post_instructions"),
    ("sometimes", "truncation"),
])
def test_bad_values_are_refused_by_name(value, where) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(msgspec.ValidationError) as refused:
        msgspec.convert({"truncation": value}, SessionUpdate)
    assert f"$.{where}" in str(refused.value)
