"""Prompt building: session instructions + stored turns + memories + the new user text,
cut to the context window by tokens.

Priority when the budget is short: the instructions and the new user text always stay;
then the session's most recent turns, newest first (continuity matters most in a live
conversation); then retrieved memories (past sessions) in the order given.

A live conversation passes a :class:`HistoryCursor`, so its history keeps one first turn
from prompt to prompt. Cutting at the oldest turn that fits would move the start every
turn once the context is full, and no prompt would share a prefix with the one before:
each turn would prefill the whole context again (2.4 s at 2048 tokens with SmolLM2 on
this CPU). With the cursor the start stays until the history no longer fits (or the
caller's window of turns has moved past it); then it moves far enough to keep only
``REFILL`` of the room, and the next turns extend that prompt, which the llm's prefix cache
answers from the new tokens alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from orchestrator.chat.service import ChatMessage
from orchestrator.errors import InvalidRequest
from storage.conversations import ConversationStore, TurnRecord

MESSAGE_OVERHEAD_TOKENS = 4
"""Role markers and separators a chat template adds around each message."""

MEMORY_HEADER = "Relevant things from earlier conversations with this user:"
REFILL = 0.5
"""Share of the history's room (tokens, or the caller's window of turns) kept at a cut."""


@dataclass(slots=True)
class HistoryCursor:
    """Where a conversation's prompt history starts, kept from one prompt to the next."""

    since: int | None = None
    """Id of the first stored turn the last prompt kept (None: nothing kept yet)."""


def build_messages(*, instructions: str | None, turns: Sequence[TurnRecord], user_text: str,
                   count_tokens: Callable[[str], int], budget_tokens: int,
                   memories: Sequence[str] = (), cursor: HistoryCursor | None = None,
                   truncated: bool = False) -> list[ChatMessage]:
    """Messages for the LLM, oldest first, within ``budget_tokens``.

    ``cursor``: keep the history's start where the last prompt had it (and update it);
    ``truncated``: ``turns`` is the newest part of a longer history (the caller's window).
    Raises InvalidRequest when the instructions and the new user text alone do not fit.
    """
    def cost(text: str) -> int:
        return count_tokens(text) + MESSAGE_OVERHEAD_TOKENS

    system = (instructions or "").strip()
    used = cost(user_text) + (cost(system) if system else 0)
    if used > budget_tokens:
        raise InvalidRequest(f"the message and instructions need about {used} tokens; the "
                             f"context budget is {budget_tokens} (LLM_CONTEXT_TOKENS)")
    candidates = [(turn, message) for turn in turns if (message := _message(turn)) is not None]
    costs = [cost(turn.text + "".join(c["name"] + c["arguments"] for c in message.tool_calls))
             for turn, message in candidates]
    start = _history_start([turn.id for turn, _ in candidates], costs, budget_tokens - used,
                           cursor, truncated)
    used += sum(costs[start:])
    history = [message for _, message in candidates[start:]]
    kept_memories: list[str] = []
    for memory in memories:
        need = count_tokens(memory) + 2 + (count_tokens(MEMORY_HEADER) if not kept_memories
                                           else 0)
        if used + need > budget_tokens:
            break
        used += need
        kept_memories.append(memory)
    messages = [ChatMessage("system", system)] if system else []
    if not user_text:  # answering a function call's result, or an assistant's own item
        return [*messages, *history]
    return [*messages, *history, ChatMessage("user", with_memories(user_text, kept_memories))]


def _history_start(ids: list[int], costs: list[int], room: int, cursor: HistoryCursor | None,
                   truncated: bool) -> int:
    """Index of the first turn the prompt keeps (see the module's note)."""
    def fitting(limit: float, most: float = float("inf")) -> int:  # newest turns within
        start, total = len(costs), 0
        while start > 0 and total + costs[start - 1] <= limit and len(costs) - start < most:
            start -= 1
            total += costs[start]
        return start

    fits_from = fitting(room)
    if cursor is None:
        return fits_from
    start = fits_from
    if cursor.since is not None:
        kept = next((i for i, turn_id in enumerate(ids) if turn_id >= cursor.since), len(ids))
        window_moved = truncated and (not ids or ids[0] > cursor.since)
        if kept >= fits_from and not window_moved:
            start = kept
        else:  # a cut: keep REFILL of the room, but at least the newest turn that fits
            start = min(fitting(room * REFILL, len(ids) * REFILL if window_moved
                                else float("inf")), max(fits_from, len(ids) - 1))
    cursor.since = ids[start] if start < len(ids) else None
    return start


def _message(turn: TurnRecord) -> ChatMessage | None:
    """A stored turn as a message: text, a call's result, or an assistant's calls."""
    if turn.role == "tool":
        return ChatMessage("tool", turn.text, tool_call_id=turn.tool_call_id) \
            if turn.tool_call_id else None
    calls = tuple({"call_id": c["call_id"], "name": c["name"], "arguments": c["arguments"]}
                  for c in turn.tool_calls or ())
    if turn.role not in ("user", "assistant") or not (turn.text.strip() or calls):
        return None
    return ChatMessage(turn.role, turn.text, tool_calls=calls)  # type: ignore[arg-type]


def with_memories(user_text: str, memories: Sequence[str]) -> str:
    """The new user message with the memories recalled for it in front. They vary from
    turn to turn, so they go last: in the system prompt they would change the start of
    every prompt and no turn could reuse the cached prefix of the one before."""
    if not memories:
        return user_text
    block = MEMORY_HEADER + "\n" + "\n".join(f"- {m}" for m in memories)
    return f"{block}\n\n{user_text}"


async def session_messages(conversations: ConversationStore, session_id: str, user_text: str,
                           *, count_tokens: Callable[[str], int], budget_tokens: int,
                           memories: Sequence[str] = (), default_instructions: str | None = None,
                           max_turns: int = 50) -> list[ChatMessage]:
    """:func:`build_messages` for a stored session: its instructions and recent turns.

    Call it before storing the new user turn (else the user text appears twice).
    ``chat.count_tokens`` of the ChatService is the right counter.
    """
    session = await conversations.get_session(session_id)
    turns = await conversations.recent_turns(session_id, limit=max_turns)
    return build_messages(instructions=session.instructions or default_instructions,
                          turns=turns, user_text=user_text, count_tokens=count_tokens,
                          budget_tokens=budget_tokens, memories=memories)
