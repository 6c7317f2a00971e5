"""Conversation memory in Milvus: one collection of turn embeddings (pymilvus).

``MILVUS_URI`` / ``MILVUS_HOST`` name a Milvus server; by default a Milvus Lite file in
``DATA_DIR`` (one process per file: Milvus Lite takes a lock). SQL stays the source of
truth: this collection can be dropped and rebuilt from the ``turns`` table at any time
(``voicechat memory reindex``).

Collection schema (``MILVUS_COLLECTION``, default ``voice_conversations``)::

    id          INT64 primary key   the SQL turn id: writes are idempotent upserts, and a
                                    rebuild yields the same ids
    user_id     VARCHAR(128)        every search filters on it
    session_id  VARCHAR(64)
    turn_id     INT64               the SQL turn id (named for readers of the original schema)
    role        VARCHAR(16)         user | assistant
    text        VARCHAR(65535)      the turn's text (truncated to fit, on a UTF-8 boundary)
    created_at  INT64               milliseconds since the epoch, UTC
    embedding   FLOAT_VECTOR(dim)   unit vector from the embedder; metric IP; index HNSW on
                                    a server, FLAT (exact) on Milvus Lite

pymilvus is synchronous: :class:`MemoryStore` is a plain blocking class, and async
callers run it in a thread (``orchestrator.memory``). Filter expressions are built only
from escaped string literals and integers, so a hostile ``user_id`` cannot widen a
search to other users.

Reads on a server: Milvus Lite answers every read with every write before it, a server
(collection default: Bounded consistency) may answer from up to 5 s ago (gracefulTime),
so a turn stored or deleted through another replica is not yet seen. Reads that must see
every earlier write (``search(latest=True)``, ``rows``, ``count``) ask for Strong
consistency, which costs about 400 ms on an idle Milvus 2.3 server; the chat path's recall
keeps Bounded (a few ms), since it searches past sessions, not the last seconds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from storage.errors import SchemaMismatch, StorageError, StorageUnavailable
from storage.milvus_lite import (
    LITE_CHANNEL_OPTIONS,
    pymilvus_module,
    release_lite,
    set_aside_orphans,
)

log = logging.getLogger(__name__)

MAX_TEXT_BYTES = 65535
USER_ID_MAX = 128
SESSION_ID_MAX = 64
ROLE_MAX = 16
OUTPUT_FIELDS = ["user_id", "session_id", "turn_id", "role", "text", "created_at"]

@dataclass(frozen=True, slots=True)
class MemoryRow:
    """One stored turn with its vector."""

    turn_id: int
    user_id: str
    session_id: str
    role: str
    text: str
    created_at: datetime
    embedding: np.ndarray


@dataclass(frozen=True, slots=True)
class MemoryHit:
    """A search result: the stored turn and its cosine similarity to the query."""

    text: str
    score: float
    user_id: str
    session_id: str
    turn_id: int
    role: str
    created_at: datetime


def quote(value: str) -> str:
    """``value`` as a Milvus expression string literal (backslash and quote escaped)."""
    if any(ord(c) < 0x20 for c in value):
        raise ValueError("control characters are not allowed in a filter value")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _fit_text(text: str) -> str:
    data = text.encode("utf-8")
    if len(data) <= MAX_TEXT_BYTES:
        return text
    return data[:MAX_TEXT_BYTES].decode("utf-8", errors="ignore")


def _millis(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def _datetime(millis: int) -> datetime:
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


class MemoryStore:
    """The memory collection on a Milvus server or a Milvus Lite file (blocking calls)."""

    def __init__(self, uri: str, collection: str, dimension: int, *, token: str = "",
                 timeout_s: float = 10.0) -> None:
        self.uri = uri
        self.collection = collection
        self.dimension = dimension
        self.token = token
        self.timeout_s = timeout_s
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def is_lite(self) -> bool:
        return "://" not in self.uri

    @property
    def index_type(self) -> str:
        """HNSW on a server; FLAT (exact) on Milvus Lite, where it measured faster at 10k
        turns (about 20 ms against 50 ms) and HNSW took minutes to build at 100k on two
        cores (docs/benchmarks/memory.md)."""
        return "FLAT" if self.is_lite else "HNSW"

    # --- connection and schema ----------------------------------------------------

    def open(self, *, recreate: bool = False) -> None:
        """Connect and make sure the collection exists with this dimension (idempotent).

        Raises SchemaMismatch when an existing collection stores another dimension, and
        StorageUnavailable when Milvus cannot be reached. ``recreate`` drops the
        collection first (reindex; the way to change dimension).
        """
        MilvusClient = pymilvus_module().MilvusClient

        with self._lock:
            if self._client is not None:
                return
            if self.is_lite:
                Path(self.uri).parent.mkdir(parents=True, exist_ok=True)
                set_aside_orphans(Path(self.uri))
                # Milvus Lite serves gRPC in this process and does not implement
                # AllocTimestamp, which pymilvus probes: grpc logs a harmless traceback at
                # ERROR on every start. Nothing else here runs a gRPC server.
                logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
            try:
                client = MilvusClient(self.uri, token=self.token, timeout=self.timeout_s,
                                      **({"grpc_options": LITE_CHANNEL_OPTIONS}
                                         if self.is_lite else {}))
            except Exception as exc:
                raise StorageUnavailable(f"Milvus at {self.uri} is unreachable: {exc}") from exc
            try:
                if recreate and client.has_collection(self.collection, timeout=self.timeout_s):
                    client.drop_collection(self.collection, timeout=self.timeout_s)
                self._ensure_collection(client)
            except Exception:
                client.close()
                raise
            self._client = client

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception as exc:  # closing a dead connection
                log.debug("closing Milvus: %s", exc)
            if self.is_lite:
                release_lite(self.uri)

    def _ensure_collection(self, client: Any) -> None:
        name = self.collection
        try:
            if client.has_collection(name, timeout=self.timeout_s):
                stored = self._stored_dimension(client)
                if stored != self.dimension:
                    raise SchemaMismatch(
                        f"Milvus collection {name!r} stores {stored}-dimensional embeddings "
                        f"but the embedder produces {self.dimension}-dimensional ones; "
                        f"set MILVUS_COLLECTION to a new name or rebuild it with "
                        f"`voicechat memory reindex`")
            else:
                self._create(client)
            # A server that has just restarted takes tens of seconds to load: bounded, so a
            # caller gets "unavailable" (and retries later) instead of waiting on it.
            client.load_collection(name, timeout=self.timeout_s)
        except StorageError:
            raise
        except Exception as exc:
            raise StorageUnavailable(f"Milvus collection {name!r}: {exc}") from exc

    def _stored_dimension(self, client: Any) -> int | None:
        for field in client.describe_collection(self.collection,
                                                timeout=self.timeout_s)["fields"]:
            if field["name"] == "embedding":
                return int(field.get("params", {}).get("dim", 0))
        raise SchemaMismatch(f"Milvus collection {self.collection!r} has no 'embedding' "
                             "field; it was not created by this service")

    def _create(self, client: Any) -> None:
        pymilvus = pymilvus_module()
        DataType, MilvusClient = pymilvus.DataType, pymilvus.MilvusClient

        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("user_id", DataType.VARCHAR, max_length=USER_ID_MAX)
        schema.add_field("session_id", DataType.VARCHAR, max_length=SESSION_ID_MAX)
        schema.add_field("turn_id", DataType.INT64)
        schema.add_field("role", DataType.VARCHAR, max_length=ROLE_MAX)
        schema.add_field("text", DataType.VARCHAR, max_length=MAX_TEXT_BYTES)
        schema.add_field("created_at", DataType.INT64)
        schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=self.dimension)
        index = client.prepare_index_params()
        index.add_index(field_name="embedding", index_type=self.index_type, metric_type="IP",
                        params={"M": 16, "efConstruction": 200}
                        if self.index_type == "HNSW" else {})
        client.create_collection(self.collection, schema=schema, index_params=index,
                                 timeout=self.timeout_s)
        log.info("created Milvus collection %s (dim %d)", self.collection, self.dimension)

    def _connected(self) -> Any:
        if self._client is None:
            self.open()
        return self._client

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        client = self._connected()
        try:
            return fn(client, *args, **kwargs)
        except StorageError:
            raise
        except Exception as exc:
            # A broken connection is reopened on the next call.
            self.close()
            raise StorageUnavailable(f"Milvus {what} failed: {exc}") from exc

    # --- data ---------------------------------------------------------------------

    def upsert(self, rows: Sequence[MemoryRow]) -> int:
        if not rows:
            return 0
        data = []
        for row in rows:
            vector = np.asarray(row.embedding, np.float32).reshape(-1)
            if vector.size != self.dimension:
                raise SchemaMismatch(f"embedding of turn {row.turn_id} has {vector.size} "
                                     f"dimensions; the collection stores {self.dimension}")
            data.append({"id": int(row.turn_id), "user_id": row.user_id,
                         "session_id": row.session_id, "turn_id": int(row.turn_id),
                         "role": row.role[:ROLE_MAX], "text": _fit_text(row.text),
                         "created_at": _millis(row.created_at), "embedding": vector.tolist()})
        self._call("upsert", lambda c: c.upsert(self.collection, data, timeout=self.timeout_s))
        return len(data)

    def search(self, user_id: str, vector: np.ndarray, *, top_k: int, min_score: float,
               exclude_session_id: str | None = None, latest: bool = False) -> list[MemoryHit]:
        """The user's stored turns most similar to ``vector`` (never another user's).

        ``latest``: see every write and delete made before the call, through any process
        (Strong consistency; slower on a server, see the module's docstring)."""
        if top_k <= 0 or not user_id or any(ord(c) < 0x20 for c in user_id):
            return []  # no stored turn has such a user id (SQL user ids are validated)
        expression = f"user_id == {quote(user_id)}"
        if exclude_session_id:
            expression += f" and session_id != {quote(exclude_session_id)}"
        query = np.asarray(vector, np.float32).reshape(-1).tolist()
        results = self._call("search", lambda c: c.search(
            self.collection, data=[query], limit=top_k, filter=expression,
            output_fields=OUTPUT_FIELDS, **_consistency(latest),
            search_params={"metric_type": "IP", "params": {"ef": max(64, top_k)}
                           if self.index_type == "HNSW" else {}},
            timeout=self.timeout_s))
        hits = []
        for found in results[0] if results else []:
            entity = found["entity"]
            score = float(found["distance"])
            # Defence in depth: the filter already restricts the user.
            if score < min_score or entity["user_id"] != user_id:
                continue
            hits.append(MemoryHit(text=entity["text"], score=score, user_id=entity["user_id"],
                                  session_id=entity["session_id"],
                                  turn_id=int(entity["turn_id"]), role=entity["role"],
                                  created_at=_datetime(int(entity["created_at"]))))
        return hits

    def count(self) -> int:
        """Stored rows, the ones written a moment ago included (a server's collection
        statistics count only flushed segments)."""
        found = self._call("count", lambda c: c.query(
            self.collection, filter="", output_fields=["count(*)"], timeout=self.timeout_s,
            **_consistency(True)))
        return int(found[0]["count(*)"])

    def rows(self, batch: int = 1000) -> list[dict[str, Any]]:
        """Every stored row with its vector, ordered by id (reindex checks, tests)."""
        fields = ["id", *OUTPUT_FIELDS, "embedding"]

        def iterate(client: Any) -> list[dict[str, Any]]:
            iterator = client.query_iterator(
                self.collection, batch_size=batch, filter="id >= 0", output_fields=fields,
                timeout=self.timeout_s)
            out: list[dict[str, Any]] = []
            try:
                while page := iterator.next():
                    out.extend(page)
            finally:
                iterator.close()
            return sorted(out, key=lambda r: r["id"])

        def by_id(client: Any) -> list[dict[str, Any]]:
            # pymilvus 3's iterator reads nothing that a Milvus 2.3 server got a moment
            # ago (the server gives it no MVCC timestamp; it falls back to its own
            # clock), so pages by id here: a server returns a query's rows in id order.
            out: list[dict[str, Any]] = []
            while True:
                after = out[-1]["id"] if out else -1
                page = client.query(self.collection, filter=f"id > {int(after)}", limit=batch,
                                    output_fields=fields, timeout=self.timeout_s,
                                    **_consistency(True))
                out.extend(page)
                if len(page) < batch:
                    return out

        # Milvus Lite answers every read with every earlier write, but in no id order.
        return self._call("query", iterate if self.is_lite else by_id)

    def flush(self) -> None:
        """Seal what was just written. After a bulk load (reindex) this matters: Milvus Lite
        searches an unsealed segment by brute force in Python (about 1 s per search with
        10k fresh rows, 20 ms once sealed)."""
        self._call("flush", lambda c: c.flush(self.collection, timeout=self.timeout_s))

    def delete_turns(self, turn_ids: Sequence[int]) -> None:
        if turn_ids:
            self._call("delete", lambda c: c.delete(self.collection,
                                                    ids=[int(t) for t in turn_ids],
                                                    timeout=self.timeout_s))

    def delete_user(self, user_id: str) -> None:
        self._call("delete", lambda c: c.delete(self.collection,
                                                filter=f"user_id == {quote(user_id)}",
                                                timeout=self.timeout_s))

    def removed(self) -> bool:
        """A Milvus Lite store whose files were deleted under it (it goes on serving from
        the deleted files until it stops)."""
        return self.is_lite and not Path(self.uri).exists()

    def ping(self) -> str:
        """Raises when Milvus or the collection is unavailable (health probe). Bounded: the
        health check gives up waiting on it, but its worker thread would stay blocked on
        a frozen server, one more per probe, until the default pool has none left."""
        found = self._call("ping", lambda c: c.get_load_state(self.collection,
                                                              timeout=self.timeout_s))
        state = getattr(found["state"], "name", str(found["state"]))
        if state != "Loaded":
            # A restarted server answers while it loads the collection again (tens of
            # seconds); searches fail meanwhile, so health must not say "up".
            self.close()  # the next call opens it again, and loads it
            raise StorageUnavailable(f"Milvus collection {self.collection!r} is not loaded "
                                     f"({state})")
        return "lite" if self.is_lite else self.uri


def _consistency(latest: bool) -> dict[str, str]:
    """A read's consistency: Strong for ``latest``, else the collection's own (Bounded)."""
    return {"consistency_level": "Strong"} if latest else {}
