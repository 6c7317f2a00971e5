"""Prompt building from a stored session (SQLite and MariaDB): instructions, turns, cut."""

from __future__ import annotations

import pytest

from orchestrator.chat.prompt import session_messages
from storage.conversations import ConversationStore, NewTurn
from storage.database import Database

pytestmark = pytest.mark.asyncio


async def test_session_messages_use_instructions_and_newest_turns(sql_url: str) -> None:
    database = Database(sql_url, 2)
    try:
        store = ConversationStore(database)
        session = await store.create_session("kim", instructions="한국어로 답하세요.")
        for i in range(6):
            await store.add_turn(session.id, NewTurn(role="user" if i % 2 == 0 else
                                                     "assistant", text=f"turn {i} 😀"))
        messages = await session_messages(store, session.id, "새 질문",
                                          count_tokens=lambda t: len(t.split()),
                                          budget_tokens=(2 + 4) + (2 + 4) + 3 * (3 + 4))
        assert messages[0].role == "system" and messages[0].content == "한국어로 답하세요."
        assert [m.content for m in messages[1:]] == ["turn 3 😀", "turn 4 😀", "turn 5 😀",
                                                     "새 질문"]
    finally:
        await database.close()
