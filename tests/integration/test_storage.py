"""The conversation store on SQLite and a real MariaDB: rows, statistics, migrations."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from storage.conversations import ConversationStore, NewTurn
from storage.errors import RecordNotFound, SchemaMismatch
from storage.migrate import current_revision, ensure_current, head_revision

pytestmark = pytest.mark.asyncio


async def seed(store: ConversationStore) -> dict[str, str]:
    """Two users, three sessions, known timings and tokens (see the expected values)."""
    a1 = await store.create_session("alice", language="en")
    a2 = await store.create_session("alice", language="ko")
    b1 = await store.create_session("bob")
    await store.add_turn(a1.id, NewTurn("user", "hello", stt_ms=100, audio_duration_ms=1500,
                                        prompt_tokens=10, voice_to_voice_ms=900))
    await store.add_turn(a1.id, NewTurn("assistant", "hi there", llm_first_token_ms=40,
                                        llm_total_ms=400, tts_first_audio_ms=60,
                                        completion_tokens=5, audio_duration_ms=800))
    await store.add_turn(a1.id, NewTurn("user", "how are you", stt_ms=300, prompt_tokens=20,
                                        voice_to_voice_ms=1100, audio_duration_ms=2000))
    await store.add_turn(a1.id, NewTurn("assistant", "fine", llm_first_token_ms=80,
                                        completion_tokens=3, interrupted=True))
    await store.add_turn(a2.id, NewTurn("user", "안녕하세요 😀", stt_ms=200, prompt_tokens=30))
    await store.add_turn(b1.id, NewTurn("user", "bob's turn", stt_ms=5000, prompt_tokens=99))
    await store.end_session(a2.id)
    return {"a1": a1.id, "a2": a2.id, "b1": b1.id}


async def test_session_stats_match_hand_computed_values(store: ConversationStore) -> None:
    ids = await seed(store)
    stats = await store.session_stats(ids["a1"])
    assert (stats.turns, stats.user_turns, stats.assistant_turns) == (4, 2, 2)
    assert stats.interrupted_turns == 1
    assert (stats.prompt_tokens, stats.completion_tokens) == (30, 8)
    assert stats.audio_seconds == pytest.approx(4.3)  # 1.5 + 0.8 + 2.0
    assert stats.average_ms.stt_ms == pytest.approx(200.0)  # (100 + 300) / 2
    assert stats.average_ms.llm_first_token_ms == pytest.approx(60.0)  # (40 + 80) / 2
    assert stats.average_ms.llm_total_ms == pytest.approx(400.0)
    assert stats.average_ms.voice_to_voice_ms == pytest.approx(1000.0)
    assert stats.average_ms.tts_total_ms is None
    assert stats.first_turn_at <= stats.last_turn_at


async def test_user_stats_match_hand_computed_values(store: ConversationStore) -> None:
    await seed(store)
    alice = await store.user_stats("alice")
    assert (alice.sessions, alice.active_sessions) == (2, 1)
    assert (alice.turns, alice.user_turns, alice.assistant_turns) == (5, 3, 2)
    assert (alice.prompt_tokens, alice.completion_tokens) == (60, 8)
    assert alice.average_turns_per_session == 2.5
    assert alice.average_ms.stt_ms == pytest.approx(200.0)  # (100 + 300 + 200) / 3
    bob = await store.user_stats("bob")
    assert (bob.sessions, bob.turns, bob.prompt_tokens) == (1, 1, 99)
    assert bob.average_ms.stt_ms == pytest.approx(5000.0)


async def test_end_session_is_idempotent(store: ConversationStore) -> None:
    session = await store.create_session("carol")
    first = await store.end_session(session.id)
    second = await store.end_session(session.id)
    assert first.ended_at is not None
    assert second.ended_at == first.ended_at


async def test_unicode_round_trips_exactly(store: ConversationStore) -> None:
    text = "안녕하세요 😀🎙️ 'quote\" `tick` ; DROP TABLE turns; -- \\ 𝄞"
    session = await store.create_session("유저-1".encode().hex(), instructions=text)
    turn = await store.add_turn(session.id, NewTurn("user", text))
    assert (await store.get_session(session.id)).instructions == text
    assert (await store.get_turn(turn.id)).text == text


async def test_function_calls_and_their_outputs_round_trip(store: ConversationStore) -> None:
    session = await store.create_session("alice")
    calls = [{"call_id": "call_1", "name": "get_weather", "item_id": "item_1",
              "arguments": '{"city": "서울", "days": [1, 2]}'}]
    await store.add_turn(session.id, NewTurn("assistant", "", tool_calls=calls))
    await store.add_turn(session.id, NewTurn("tool", '{"temp_c": 18}', tool_call_id="call_1"))
    turns, total = await store.list_turns(session.id)
    assert total == 2
    assert (turns[0].tool_calls, turns[0].tool_call_id) == (calls, None)
    assert (turns[1].role, turns[1].text, turns[1].tool_call_id) == ("tool", '{"temp_c": 18}',
                                                                     "call_1")
    assert turns[1].tool_calls is None


async def test_turn_pages_are_ordered_and_counted(store: ConversationStore) -> None:
    ids = await seed(store)
    page, total = await store.list_turns(ids["a1"], limit=3, offset=0)
    assert total == 4 and [t.text for t in page] == ["hello", "hi there", "how are you"]
    page, _ = await store.list_turns(ids["a1"], limit=3, offset=3)
    assert [t.text for t in page] == ["fine"]
    recent = await store.recent_turns(ids["a1"], limit=2)
    assert [t.text for t in recent] == ["how are you", "fine"]


async def test_missing_rows_raise_not_found(store: ConversationStore) -> None:
    for call in (store.get_session("nope"), store.end_session("nope"),
                 store.session_stats("nope"), store.user_stats("nobody"),
                 store.add_turn("nope", NewTurn("user", "x"))):
        with pytest.raises(RecordNotFound):
            await call


async def test_timestamps_are_utc(store: ConversationStore) -> None:
    before = datetime.now(UTC)
    session = await store.create_session("dave")
    fetched = await store.get_session(session.id)
    assert fetched.started_at.tzinfo is not None
    assert abs((fetched.started_at - before).total_seconds()) < 60


async def test_iter_turns_visits_every_turn_once(store: ConversationStore) -> None:
    await seed(store)
    seen = [t.id async for batch in store.iter_turns(batch=4) for t in batch]
    assert seen == sorted(seen) and len(seen) == 6


async def test_migrations_are_at_head(sql_url: str) -> None:
    assert await current_revision(sql_url) == head_revision()
    await ensure_current(sql_url)


async def test_unmigrated_database_is_refused(tmp_path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    with pytest.raises(SchemaMismatch, match="voicechat db upgrade"):
        await ensure_current(url)


async def test_migrations_create_the_tables_the_code_declares(sql_url: str) -> None:
    """No drift between storage/tables.py and the migrations (api_keys included)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from storage.database import make_engine
    from storage.tables import Base

    engine = make_engine(sql_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": False}), Base.metadata))
    finally:
        await engine.dispose()
    assert diff == []
