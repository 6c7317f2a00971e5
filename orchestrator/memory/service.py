"""The memory service (``runtime.services.memory``): the realtime ``Memory`` port plus
the search endpoint and reindexing.

* ``remember(turns)``: embed finished user/assistant turns in one batched call, upsert.
* ``recall(user_id, query, ...)``: embed the query, search that user's turns only.
  Both are used on the chat path and never raise: a failure is logged, counted, and
  shows in ``/api/health`` (``memory`` check, not required -> ``degraded``).
* ``search(...)``: the same as recall for the HTTP endpoint, but failures raise
  :class:`~orchestrator.errors.MemoryUnavailable` (503) so callers see why, and it sees
  every turn stored before it through any replica (recall may miss the last few seconds'
  on a Milvus server: see ``storage.memory``).

pymilvus blocks: every store call runs in a worker thread. The store opens lazily and
reopens after a failure, at most once per ``retry_s``; a collection whose dimension
differs from the embedder's is a configuration error and stops start-up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.errors import InferenceError, MemoryUnavailable
from orchestrator.memory.embedder import TritonEmbedder
from orchestrator.telemetry.metrics import MEMORY_WRITES
from storage.conversations import ConversationStore, TurnRecord
from storage.errors import SchemaMismatch, StorageError
from storage.memory import MemoryHit, MemoryRow, MemoryStore

log = logging.getLogger(__name__)

REMEMBERED_ROLES = ("user", "assistant")


@dataclass
class ReindexReport:
    turns: int
    seconds: float


class MemoryService:
    def __init__(self, embedder: TritonEmbedder, *, uri: str, collection: str,
                 retry_s: float = 5.0, timeout_s: float = 10.0) -> None:
        self.embedder = embedder
        self.uri = uri
        self.collection = collection
        self.retry_s = retry_s
        self.timeout_s = timeout_s
        self.store: MemoryStore | None = None
        self.last_error: str | None = None
        self.failures = 0
        self._next_try = 0.0
        self._opening = asyncio.Lock()

    # --- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        """Open the collection now if possible. A dimension mismatch raises (fatal);
        anything else leaves the service degraded until a later call succeeds."""
        try:
            await self._ready(force=True)
        except SchemaMismatch:
            raise
        except MemoryUnavailable as exc:
            log.warning("conversation memory unavailable at start-up: %s", exc)

    async def close(self) -> None:
        store, self.store = self.store, None
        if store is not None:
            await asyncio.to_thread(store.close)

    async def _ready(self, force: bool = False) -> MemoryStore:
        if self.store is not None:
            return self.store
        async with self._opening:
            if self.store is not None:
                return self.store
            if not force and time.monotonic() < self._next_try:
                raise MemoryUnavailable(f"conversation memory is unavailable: "
                                        f"{self.last_error}")
            try:
                dimension = await self.embedder.dimension()
                store = MemoryStore(self.uri, self.collection, dimension,
                                    timeout_s=self.timeout_s)
                await asyncio.to_thread(store.open)
            except SchemaMismatch as exc:
                self._failed(exc)
                raise
            except (StorageError, InferenceError) as exc:
                self._failed(exc)
                raise MemoryUnavailable(f"conversation memory is unavailable: {exc}") from exc
            self.store, self.last_error = store, None
            return store

    def _failed(self, exc: BaseException) -> None:
        self.failures += 1
        self.last_error = str(exc)
        self._next_try = time.monotonic() + self.retry_s

    async def _store_call(self, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        store = await self._ready()
        try:
            return await asyncio.to_thread(fn, store, *args, **kwargs)
        except StorageError as exc:
            self._failed(exc)
            if not isinstance(exc, SchemaMismatch):
                self.store = None  # reopened (after retry_s) by the next call
            raise MemoryUnavailable(f"conversation memory is unavailable: {exc}") from exc

    async def _embed(self, texts: Sequence[str]):  # type: ignore[no-untyped-def]
        try:
            return await self.embedder.embed(texts)
        except InferenceError as exc:
            self._failed(exc)
            raise MemoryUnavailable(f"the embedder is unavailable: {exc}") from exc

    # --- the Memory port (chat path: never raises) --------------------------------

    async def remember(self, turns: list[TurnRecord]) -> None:
        try:
            await self.write(turns)
        except Exception as exc:  # memory is an aid: the turns are in SQL
            log.warning("memory write failed (turns stay in SQL; `voicechat memory reindex` "
                        "restores them): %s", exc)

    async def forget(self, turn_ids: Sequence[int]) -> None:
        """Drop deleted turns from memory (a failure is logged: reindex repairs it)."""
        try:
            await self._store_call(MemoryStore.delete_turns, list(turn_ids))
        except Exception as exc:
            log.warning("memory delete failed (`voicechat memory reindex` repairs it): %s", exc)

    async def recall(self, user_id: str, query: str, top_k: int, min_score: float,
                     exclude_session_id: str | None = None) -> Sequence[MemoryHit]:
        try:
            # Past sessions only: the server's bounded staleness costs nothing here, and
            # Strong reads would add about 400 ms to every turn.
            return await self.search(user_id, query, top_k=top_k, min_score=min_score,
                                     exclude_session_id=exclude_session_id, latest=False)
        except Exception as exc:  # answer without memories
            log.warning("memory recall failed: %s", exc)
            return []

    # --- raising API (endpoint, CLI) ----------------------------------------------

    async def write(self, turns: Sequence[TurnRecord]) -> int:
        kept = [t for t in turns if t.role in REMEMBERED_ROLES and t.text.strip()]
        if not kept:
            return 0
        try:
            vectors = await self._embed([t.text for t in kept])
            rows = [MemoryRow(turn_id=t.id, user_id=t.user_id, session_id=t.session_id,
                              role=t.role, text=t.text, created_at=t.created_at, embedding=v)
                    for t, v in zip(kept, vectors, strict=True)]
            written = await self._store_call(MemoryStore.upsert, rows)
        except Exception:
            MEMORY_WRITES.labels("failed").inc(len(kept))
            raise
        MEMORY_WRITES.labels("ok").inc(len(kept))
        return written

    async def search(self, user_id: str, query: str, *, top_k: int, min_score: float,
                     exclude_session_id: str | None = None,
                     latest: bool = True) -> list[MemoryHit]:
        if top_k <= 0 or not query.strip():
            return []
        vector = (await self._embed([query]))[0]
        return await self._store_call(MemoryStore.search, user_id, vector, top_k=top_k,
                                      min_score=min_score,
                                      exclude_session_id=exclude_session_id, latest=latest)

    async def reindex(self, conversations: ConversationStore, *, user_id: str | None = None,
                      batch: int = 256) -> ReindexReport:
        """Rebuild from SQL: the whole collection (drop + create), or one user's rows."""
        started = time.perf_counter()
        if user_id is None:
            await self.close()
            dimension = await self.embedder.dimension()
            store = MemoryStore(self.uri, self.collection, dimension, timeout_s=self.timeout_s)
            await asyncio.to_thread(store.open, recreate=True)
            self.store = store
        else:
            await self._store_call(MemoryStore.delete_user, user_id)
        written = 0
        async for turns in conversations.iter_turns(batch=batch, user_id=user_id):
            written += await self.write(turns)
        await self._store_call(MemoryStore.flush)
        return ReindexReport(turns=written, seconds=round(time.perf_counter() - started, 3))

    async def health(self) -> str | None:
        """Health probe: raises while Milvus or the collection is unavailable."""
        if self.store is not None and await asyncio.to_thread(self.store.removed):
            # Milvus Lite keeps serving from the deleted files, so nothing else notices.
            raise MemoryUnavailable(
                f"the Milvus Lite store {self.uri} was removed while the service ran: "
                "memories go to deleted files and are lost at restart; restart the "
                "service, then `voicechat memory reindex` rebuilds them from the stored "
                "turns")
        try:
            store = await self._ready(force=True)
            return await asyncio.to_thread(store.ping)
        except MemoryUnavailable:
            raise
        except StorageError as exc:
            self._failed(exc)
            self.store = None
            raise MemoryUnavailable(f"Milvus is unavailable: {exc}") from exc
