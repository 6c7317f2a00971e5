"""Start-up wiring: the ModelAdmin service and the watcher that keeps request pins current.

Promotions may come from another process (``voicechat models promote``, another
orchestrator replica sharing the repository). Each process re-reads the models'
``serving.json`` every ``MODEL_PIN_REFRESH_S`` and re-pins its client; a promotion waits
``MODEL_SWAP_GRACE_S`` (longer) before unloading the old version, so no process still
sends to a version that is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from export.repository import ModelRepository
from orchestrator.inference.client import TritonClient
from orchestrator.models.service import ModelAdmin
from orchestrator.models.state import serving_file
from orchestrator.settings import Settings

log = logging.getLogger(__name__)


def _stamps(root: Path, profile: str) -> dict[str, float]:
    stamps = {}
    for path in root.glob(f"*/{serving_file(profile)}"):
        with contextlib.suppress(OSError):
            stamps[str(path)] = path.stat().st_mtime_ns
    return stamps


async def watch_serving(admin: ModelAdmin, interval_s: float) -> None:
    seen = _stamps(admin.repository.root, admin.profile)
    while True:
        await asyncio.sleep(interval_s)
        try:
            now = await asyncio.to_thread(_stamps, admin.repository.root, admin.profile)
            if now != seen:
                seen = now
                admin.restore_pins()
                log.info("model pins refreshed", extra={"pins": admin.client.default_versions})
        except Exception:
            log.exception("could not refresh model pins")


def start_model_admin(settings: Settings, client: TritonClient
                      ) -> tuple[ModelAdmin, Callable[[], Awaitable[None]]]:
    """The ModelAdmin service, with requests pinned to the promoted versions, and the
    watcher that keeps the pins current; returns it and the watcher's stop."""
    admin = ModelAdmin(ModelRepository(settings.model_repository), client,
                       grace_s=settings.model_swap_grace_s, profile=settings.serving_profile)
    admin.restore_pins()
    task = asyncio.create_task(watch_serving(admin, settings.model_pin_refresh_s),
                               name="model-pins")

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return admin, stop
