"""``session.truncation``: how much stored history a reply's prompt keeps.

* ``auto`` (the default): the prompt builder cuts the history to ``LLM_CONTEXT_TOKENS``
  with its cursor (:mod:`orchestrator.chat.prompt`: a stable start, half the room kept at
  a cut), within the ``REALTIME_HISTORY_TURNS`` window.
* ``disabled``: nothing is dropped; a reply whose prompt would not fit the context fails
  with an error that says so (as OpenAI's does).
* ``retention_ratio``: OpenAI's meaning. While the conversation after the instructions
  fits ``token_limits.post_instructions`` (default: the context budget less the reply's
  output tokens), the prompt keeps its first turn and only grows; once it exceeds the
  limit, the oldest turns go in one cut so that ``retention_ratio`` of the limit is kept.
  The kept prefix then stays the same for the following turns until the limit is hit
  again, so the llm's prefix cache answers them from the new tokens alone.

The two explicit modes read the whole stored conversation (up to :data:`ALL_TURNS`), not
the ``REALTIME_HISTORY_TURNS`` window, which would slide the prompt's start by itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from orchestrator.chat.prompt import MESSAGE_OVERHEAD_TOKENS, HistoryCursor
from orchestrator.chat.service import estimate_tokens
from orchestrator.errors import InvalidRequest
from orchestrator.realtime.protocol.session_types import RetentionRatio, Truncation
from storage.conversations import TurnRecord

ALL_TURNS = 10_000
"""Stored turns the explicit modes read at most."""


def turns_to_read(mode: Truncation, window: int) -> int:
    return window if mode == "auto" else ALL_TURNS


def turn_cost(turn: TurnRecord, count: Callable[[str], int]) -> int:
    """A turn's tokens as the prompt builder counts them (its calls included)."""
    calls = "".join(c["name"] + c["arguments"] for c in turn.tool_calls or ())
    return count(turn.text + calls) + MESSAGE_OVERHEAD_TOKENS


def retention_start(ids: Sequence[int], costs: Sequence[int], *, limit: int, ratio: float,
                    cursor: HistoryCursor, reserved: int = 0) -> int:
    """Index of the first turn a ``retention_ratio`` prompt keeps.

    ``ids`` / ``costs``: the stored turns, oldest first, and their tokens; ``reserved``:
    tokens of the conversation that cannot be dropped (the new user message). The
    cursor's turn stays the first while the conversation from it fits ``limit``; past
    it, the newest turns within ``ratio * limit`` are kept (one cut), and the cursor
    moves there."""
    kept = 0
    if cursor.since is not None:
        kept = next((i for i, turn_id in enumerate(ids) if turn_id >= cursor.since), len(ids))
    start = kept
    if sum(costs[kept:]) + reserved > limit:
        target, start, total = ratio * limit - reserved, len(costs), 0
        while start > 0 and total + costs[start - 1] <= target:
            start -= 1
            total += costs[start]
    if start < len(ids):
        cursor.since = ids[start]
    elif ids:  # nothing kept: the next prompt starts after the last of these turns
        cursor.since = ids[-1] + 1
    return start


def keep_history(prompt: Any, history: list[TurnRecord], mode: Truncation, *,
                 instructions: str, user_text: str | None, cursor: HistoryCursor,
                 output_tokens: int) -> list[TurnRecord]:
    """The turns an explicit mode keeps (``auto`` is the prompt builder's to cut).

    ``prompt``: the :class:`~.ports.PromptBuilder` (its ``count_tokens`` and
    ``budget_tokens`` when it has them: the served model's tokenizer and
    ``LLM_CONTEXT_TOKENS``)."""
    if mode == "auto":
        return history
    count = getattr(prompt, "count_tokens", None) or estimate_tokens
    budget = getattr(prompt, "budget_tokens", None)
    costs = [turn_cost(turn, count) for turn in history]
    system = instructions.strip()
    fixed = count(system) + MESSAGE_OVERHEAD_TOKENS if system else 0
    user = count(user_text) + MESSAGE_OVERHEAD_TOKENS if user_text else 0
    if mode == "disabled":
        need = fixed + sum(costs) + user
        if budget is not None and need > budget:
            raise InvalidRequest(
                f"the conversation needs about {need} tokens and the context budget is "
                f"{budget} (LLM_CONTEXT_TOKENS); session.truncation is 'disabled', so no "
                "history is dropped: delete items or set truncation to 'auto' or "
                "'retention_ratio'", param="session.truncation")
        return history
    assert isinstance(mode, RetentionRatio)
    limit = post_instructions_limit(mode, budget, output_tokens, fixed)
    start = retention_start([turn.id for turn in history], costs, limit=limit,
                            ratio=mode.retention_ratio, cursor=cursor, reserved=user)
    return history[start:]


def post_instructions_limit(mode: RetentionRatio, budget: int | None, output_tokens: int,
                            instructions: int = 0) -> int:
    """``token_limits.post_instructions``, or the context budget less the output tokens;
    never more than the budget leaves after the instructions."""
    room = None if budget is None else budget - instructions
    limits = mode.token_limits
    if limits is not None and limits.post_instructions is not None:
        return limits.post_instructions if room is None else \
            min(limits.post_instructions, room)
    if budget is None:
        return 1 << 30
    return max(1, min(budget - output_tokens, room or 1))
