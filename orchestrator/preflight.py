"""Start-up checks that run before any model loads, so a bad setting or a missing
dependency is one line naming it, not a traceback minutes later."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from orchestrator.inference.health import enabled_models
from orchestrator.redaction import mask_url
from orchestrator.settings import Settings

DB_CONNECT_TIMEOUT_S = 5.0


class StartupError(RuntimeError):
    """The service cannot start; the message names the setting or dependency."""


def check_serve(settings: Settings) -> None:
    """Everything ``voicechat serve`` needs, in the order a user would fix it."""
    check_data_dir(settings)
    check_port("PORT", settings.host, settings.port)
    if not settings.triton_url and enabled_models(settings):
        check_triton(settings)
    check_milvus(settings)
    check_database(settings)


def check_triton(settings: Settings) -> None:
    """The embedded Triton's repository and ports."""
    check_data_dir(settings)
    repository = Path(settings.model_repository)
    if not repository.is_dir():
        raise StartupError(f"MODEL_REPOSITORY={settings.model_repository}: no such directory; "
                           "export the models first (`make models`) or set TRITON_URL")
    for variable, port in (("TRITON_GRPC_PORT", settings.triton_grpc_port),
                           ("TRITON_HTTP_PORT", settings.triton_http_port),
                           ("TRITON_METRICS_PORT", settings.triton_metrics_port)):
        check_port(variable, "127.0.0.1", port)


def check_data_dir(settings: Settings) -> None:
    path = Path(settings.data_dir)
    if path.exists() and not path.is_dir():
        raise StartupError(f"DATA_DIR={settings.data_dir} is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupError(f"DATA_DIR={settings.data_dir}: cannot create it "
                           f"({exc.strerror})") from None


def check_port(variable: str, host: str, port: int) -> None:
    """The port can be bound now (another service holding it is found before models load)."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
        try:
            probe.bind((host.strip("[]"), port))
        except OSError as exc:
            reason = "already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise StartupError(f"{variable}={port}: cannot listen on {host}:{port} "
                               f"({reason})") from None


def is_milvus_lite_store(path: Path) -> bool:
    """Milvus Lite 2.5 keeps its database as a directory (a LOCK file, collections/)."""
    return (path / "LOCK").exists() or (path / "collections").is_dir()


def check_milvus(settings: Settings) -> None:
    """A Milvus Lite file must sit in a directory we can create."""
    if not settings.memory_enabled:
        return
    target = settings.milvus_target
    if "://" in target:
        return  # a server: reachability is reported by health (memory is optional)
    path = Path(target)
    if path.is_dir() and not is_milvus_lite_store(path) and any(path.iterdir()):
        raise StartupError(f"MILVUS_URI={target} is a directory of other files; give a "
                           "Milvus Lite path (data/milvus.db) or a server URL "
                           "(http://host:19530)")
    if _held_by_another_process(path / "LOCK"):
        raise StartupError(f"MILVUS_URI={target} is open in another process: a Milvus Lite "
                           "store serves one process, so several replicas need a Milvus "
                           "server (MILVUS_HOST, or MILVUS_URI=http://host:19530)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupError(f"MILVUS_URI={target}: cannot create {path.parent} "
                           f"({exc.strerror})") from None


def _held_by_another_process(lock: Path) -> bool:
    """Milvus Lite holds an exclusive ``flock`` on its store's LOCK file while open."""
    import fcntl

    try:
        fd = os.open(lock, os.O_RDWR)
    except OSError:
        return False  # no store yet, or not one we may open: start-up says so later
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def check_database(settings: Settings) -> None:
    """Connect once (``SELECT 1``) so an unreachable or refusing database is named now."""
    from storage.database import Database

    async def ping() -> None:
        database = Database(settings.sql_url, pool_size=1)
        try:
            await asyncio.wait_for(database.ping(), DB_CONNECT_TIMEOUT_S)
        finally:
            await database.close()

    try:
        asyncio.run(ping())
    except TimeoutError:
        raise StartupError(f"database {mask_url(settings.sql_url)} did not answer within "
                           f"{DB_CONNECT_TIMEOUT_S:.0f}s (DATABASE_URL / DB_HOST, DB_PORT)"
                           ) from None
    except Exception as exc:
        raise StartupError(database_unreachable(settings.sql_url, exc)) from None


DATABASE_ERRORS = (OSError, SQLAlchemyError)
"""What a database that vanished raises while the service starts (connection refused or
reset, a DBAPI error wrapped by SQLAlchemy)."""


def database_unreachable(url: str, exc: BaseException) -> str:
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return (f"database {mask_url(url)} unreachable: {first} "
            "(DATABASE_URL / DB_HOST, DB_PORT, DB_USER, DB_PASSWORD)")
