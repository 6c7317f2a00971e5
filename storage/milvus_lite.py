"""What Milvus Lite (the one-process store in a file, the default) needs that a Milvus
server does not: its gRPC options, releasing its lock, setting aside collections a
removed store left without a schema, and importing pymilvus around ``MILVUS_URI``."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LITE_CHANNEL_OPTIONS = {"grpc.keepalive_time_ms": 2**31 - 1,
                        "grpc.keepalive_permit_without_calls": False}
"""gRPC options toward a Milvus Lite server. pymilvus pings every 10 s even when idle (what
a Milvus server allows), but Milvus Lite's server keeps gRPC's defaults: no more than
one ping per 5 minutes without data, else ``GOAWAY too_many_pings`` (seen in the service
log about 80 s after start). Lite is a local child process: no pings at all."""


def release_lite(uri: str) -> None:
    """Milvus Lite keeps a store open (and locked) in this process until it exits;
    released here, so another process (a restart, a CLI) may open it now."""
    try:
        from milvus_lite.server_manager import server_manager_instance
    except ImportError:  # older milvus-lite: the client's close was enough
        return
    try:
        server_manager_instance.release_server(uri)
    except Exception as exc:
        log.debug("releasing Milvus Lite: %s", exc)


def set_aside_orphans(store: Path) -> list[Path]:
    """Move out of a Milvus Lite store the collection folders it no longer knows.

    A store removed while Milvus Lite ran is half re-created when it stops: the
    collection's data and manifest come back without its schema, and Lite then fails to
    create the collection again ("File exists") on every start. Returns where each went
    (beside the store, so nothing is deleted)."""
    moved = []
    for folder in sorted((store / "collections").glob("*/")):
        if (folder / "schema.json").exists():
            continue
        target = store.with_name(f"{store.name}.orphan-{int(time.time())}") / folder.name
        target.parent.mkdir(parents=True, exist_ok=True)
        folder.rename(target)
        log.warning("Milvus Lite store %s: collection %r had lost its schema (the store was "
                    "removed while it ran) and is moved to %s; `voicechat memory reindex` "
                    "rebuilds the memories from the stored turns", store, folder.name, target)
        moved.append(target)
    return moved


def pymilvus_module() -> Any:
    """pymilvus, imported with MILVUS_URI hidden: at import it parses that variable as a
    server URL for its default connection and raises on a Milvus Lite file path, which our
    MILVUS_URI allows (settings have already read it)."""
    hidden = {name: os.environ.pop(name) for name in ("MILVUS_URI", "MILVUS_DEFAULT_CONNECTION")
              if name in os.environ}
    try:
        import pymilvus
    finally:
        os.environ.update(hidden)
    return pymilvus
