"""Schema migrations (Alembic), driven from code: ``voicechat db upgrade``."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from storage.database import make_engine
from storage.errors import SchemaMismatch

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision``. Runs its own event loop: call from sync code."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


async def current_revision(url: str) -> str | None:
    engine = make_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision())
    finally:
        await engine.dispose()


async def ensure_current(url: str) -> None:
    """Fail clearly when the database is not at the code's schema revision."""
    current = await current_revision(url)
    head = head_revision()
    if current != head:
        raise SchemaMismatch(f"database schema is at revision {current or 'none'}, this "
                             f"service needs {head}: run `voicechat db upgrade`")


async def upgrade_async(url: str) -> None:
    """Apply migrations from async code (Alembic's env runs its own loop)."""
    await asyncio.to_thread(upgrade, url)
