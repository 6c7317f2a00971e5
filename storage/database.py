"""The SQL engine: MariaDB through aiomysql, or the embedded SQLite file through aiosqlite."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from storage.errors import StorageError, StorageFull, StorageUnavailable


def make_engine(url: str, pool_size: int = 10) -> AsyncEngine:
    """An engine that survives database restarts (pre-ping) and keeps SQLite safe."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_async_engine(url, pool_pre_ping=True, pool_recycle=1800,
                               pool_size=pool_size, max_overflow=pool_size)


class Database:
    """Owns the engine and hands out sessions; created at start-up, closed at shutdown."""

    def __init__(self, url: str, pool_size: int = 10) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A unit of work: committed on success, rolled back on error."""
        try:
            async with self.sessionmaker() as session, session.begin():
                yield session
        except DBAPIError as exc:
            if is_disk_full(exc):
                raise StorageFull(f"database disk full: {_short(exc)}") from exc
            if isinstance(exc, OperationalError | InterfaceError):
                raise StorageUnavailable(f"database unavailable: {_short(exc)}") from exc
            raise StorageError(f"database error: {_short(exc)}") from exc

    async def ping(self) -> float:
        """Round trip of ``SELECT 1`` in milliseconds; raises StorageUnavailable."""
        started = time.perf_counter()
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (OSError, DBAPIError) as exc:
            raise StorageUnavailable(f"database unavailable: {_short(exc)}") from exc
        return (time.perf_counter() - started) * 1000

    async def close(self) -> None:
        await self.engine.dispose()


_DISK_FULL_MESSAGES = ("database or disk is full", "no space left on device", "disk full")
_DISK_FULL_CODES = {1021, 1114}  # MariaDB/MySQL: ER_DISK_FULL, ER_RECORD_FILE_FULL


def is_disk_full(exc: DBAPIError) -> bool:
    """SQLite's SQLITE_FULL, MariaDB's disk-full errors, PostgreSQL's 53100."""
    orig = exc.orig
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int) and args[0] in _DISK_FULL_CODES:
        return True
    if getattr(orig, "sqlstate", None) == "53100" or getattr(orig, "pgcode", None) == "53100":
        return True
    return any(m in str(orig).lower() for m in _DISK_FULL_MESSAGES)


def _short(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    return str(original).splitlines()[0][:200]
