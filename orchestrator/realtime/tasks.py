"""The tasks of one realtime connection, tracked so closing leaks nothing, and the chain
that runs its turns and replies one after another.

Each job on the chain waits for the previous one, so stored turns keep conversation
order; the receive loop never waits for them, which is what lets a barge-in cancel a
reply while it is still speaking.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)


class SessionTasks:
    def __init__(self, label: str) -> None:
        self.label = label
        self.tasks: set[asyncio.Task] = set()
        self.chain: asyncio.Task | None = None
        """The last job on the chain."""
        self.closing = False
        """Set once the connection closes: only turns already on the chain still run."""

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task:
        task = asyncio.create_task(coro, name=f"realtime {self.label} {name}")
        self.tasks.add(task)
        task.add_done_callback(self._reap)
        return task

    def _reap(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("realtime task %s failed", task.get_name(), exc_info=task.exception())

    def enqueue(self, job: Callable[[], Awaitable[None]], name: str) -> asyncio.Task:
        """Run ``job`` once the chain's previous job is done."""
        previous = self.chain

        async def run() -> None:
            if previous is not None:
                await asyncio.wait([previous])
            if not self.closing or name == "turn":
                await job()

        self.chain = self.spawn(run(), name)
        return self.chain

    async def wait_chain(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` for the chain's last job."""
        if self.chain is not None:
            await asyncio.wait([self.chain], timeout=timeout_s)

    @property
    def chain_busy(self) -> bool:
        return self.chain is not None and not self.chain.done()

    async def cancel_all(self) -> None:
        """Cancel every remaining task and wait for it."""
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
