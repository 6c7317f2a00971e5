"""``voicechat memory reindex [--user-id ID] [--batch N]``: rebuild the Milvus collection
from the SQL turns (SQL is the source of truth).

Without ``--user-id`` the collection is dropped and recreated (also the way to move to
an embedder of another dimension); with it, only that user's rows are replaced. Uses
TRITON_URL, or starts the embedded Triton for the duration. With a Milvus Lite file,
stop the service first: one process at a time may open the file.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from orchestrator.errors import AppError
from orchestrator.settings import Settings


def add_memory_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("memory", help="conversation memory (Milvus)",
                                   description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="action", required=True)
    reindex = actions.add_parser("reindex", help="rebuild the collection from SQL turns")
    reindex.add_argument("--user-id", default=None, help="only this user's turns")
    reindex.add_argument("--batch", type=int, default=256, help="turns per embedding batch")


async def reindex(settings: Settings, *, user_id: str | None, batch: int) -> int:
    # Here, not at the top: every `voicechat` command imports this module to build its
    # parser, and tritonclient and SQLAlchemy are needed by reindex only.
    from orchestrator.inference.client import TritonClient
    from orchestrator.memory.embedder import TritonEmbedder
    from orchestrator.memory.service import MemoryService
    from storage.conversations import ConversationStore
    from storage.database import Database
    from storage.migrate import ensure_current, upgrade_async

    # The schema the turns are read from: current, as at service start-up.
    if settings.auto_migrate:
        await upgrade_async(settings.sql_url)
    await ensure_current(settings.sql_url)
    database = Database(settings.sql_url, settings.db_pool_size)
    triton = TritonClient(settings.triton_url or "", settings.triton_timeout_s)
    service = MemoryService(TritonEmbedder(triton), uri=settings.milvus_target,
                            collection=settings.milvus_collection)
    try:
        report = await service.reindex(ConversationStore(database), user_id=user_id,
                                       batch=batch)
    finally:
        await service.close()
        await triton.close()
        await database.close()
    scope = f"user {user_id}" if user_id else "all users"
    print(f"reindexed {report.turns} turns ({scope}) into {settings.milvus_collection} at "
          f"{settings.milvus_target} in {report.seconds:.1f} s")
    return 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    from storage.errors import StorageError

    if args.action != "reindex":  # pragma: no cover - argparse restricts it
        return 2
    # tritonclient, for reindex only (as above).
    from orchestrator.inference.embedded import triton_for
    from orchestrator.models.startup import PROMOTED

    try:
        with triton_for(settings, {"embedder"}, PROMOTED) as served:
            return asyncio.run(reindex(served, user_id=args.user_id, batch=args.batch))
    except (AppError, StorageError) as exc:
        print(f"voicechat memory reindex: {exc}", file=sys.stderr)
        return 1
