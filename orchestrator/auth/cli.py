"""``voicechat keys create|list|revoke``: API keys from the command line.

    voicechat keys create --user ID [--name N] [--admin]   the key is the last line printed
    voicechat keys list [--user ID]
    voicechat keys revoke KEY_ID

The key's secret is shown once, at creation; the database keeps only its SHA-256. A
running service picks up a revocation within AUTH_KEY_CACHE_S.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from orchestrator.settings import Settings
from orchestrator.validation import is_user_id


def add_keys_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("keys", help="API keys", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="make a key for a user (printed once)")
    create.add_argument("--user", required=True, help="the user the key acts for")
    create.add_argument("--name", default=None, help="a label, e.g. the client's name")
    create.add_argument("--admin", action="store_true",
                        help="may act for any user and manage keys and models")
    listing = actions.add_parser("list", help="keys with their status and last use")
    listing.add_argument("--user", default=None, help="only this user's keys")
    revoke = actions.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key_id")


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    from storage.api_keys import KeyStore
    from storage.database import Database
    from storage.migrate import ensure_current, upgrade_async

    if settings.auto_migrate:
        await upgrade_async(settings.sql_url)
    await ensure_current(settings.sql_url)
    database = Database(settings.sql_url, pool_size=1)
    keys = KeyStore(database)
    try:
        if args.action == "create":
            new = await keys.create(args.user, name=args.name, admin=args.admin)
            kind = "admin key" if new.record.admin else "key"
            print(f"created {kind} {new.record.id} for user {new.record.user_id}"
                  f"{f' ({new.record.name})' if new.record.name else ''}.")
            print("Store it now: it is shown only this once.")
            print(new.secret)
        elif args.action == "list":
            rows = await keys.list(args.user)
            print(f"{'ID':<22} {'USER':<24} {'PREFIX':<14} {'ADMIN':<6} {'STATUS':<8} "
                  f"{'CREATED':<20} {'LAST USED':<20} NAME")
            for r in rows:
                print(f"{r.id:<22} {r.user_id:<24} {r.prefix:<14} {'yes' if r.admin else 'no':<6} "
                      f"{'active' if r.active else 'revoked':<8} {_when(r.created_at):<20} "
                      f"{_when(r.last_used_at):<20} {r.name or ''}")
        else:
            record = await keys.revoke(args.key_id)
            print(f"revoked {record.id} (user {record.user_id}) at {_when(record.revoked_at)}")
            if settings.redis_url:
                print(await _announce(settings.redis_url, record.id))
    finally:
        await database.close()
    return 0


async def _announce(redis_url: str, key_id: str) -> str:
    """Tell the running replicas (REDIS_URL), so they stop accepting it at once."""
    from orchestrator.shared.connection import SharedRedis
    from orchestrator.shared.revocations import REVOKED_CHANNEL

    shared = SharedRedis(redis_url, lease_ttl_s=15.0)
    try:
        await shared.start()
        if await shared.publish(REVOKED_CHANNEL, key_id):
            return "every replica was told through Redis"
        return ("Redis does not answer: replicas stop accepting it within AUTH_KEY_CACHE_S "
                "(or when Redis is back)")
    finally:
        await shared.close()


def _when(value) -> str:  # type: ignore[no-untyped-def]
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"


def run(args: argparse.Namespace, settings: Settings) -> int:
    from storage.errors import StorageError

    user = getattr(args, "user", None)
    if user is not None and (not is_user_id(user)):
        print("voicechat keys: --user must be 1-64 characters: letters, digits, . _ @ : -",
              file=sys.stderr)
        return 2
    try:
        return asyncio.run(_run(args, settings))
    except StorageError as exc:
        print(f"voicechat keys: {exc}", file=sys.stderr)
        return 1
