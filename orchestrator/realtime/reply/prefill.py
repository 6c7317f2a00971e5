"""The coming reply's prompt, read into the LLM's prefix cache while the user still speaks.

Every partial transcript of the turn being spoken makes the prompt the reply would have
if the turn ended there (instructions, memories, history, the words so far) and sends it
to the ``llm`` model as a prefill: a one-token request whose generator the model pools
with the prompt it holds (``export/llm/prefix_cache.py``). The next prefill of the same
turn takes that generator, rewinds it to the words that still agree and appends the rest;
so does the reply when the turn ends, and its first token then waits only for the last
words and the assistant header, not the whole prompt.

One prefill at a time per session, and none while a reply is pending (its prompt would
soon be stale). A prefill taken from the pool is out of it until it finishes, so the reply
waits for the one in flight (briefly: a few tokens) before it sends its own request.
A prefill that fails or is cancelled costs nothing but the work: no event, no row.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

SETTLE_TIMEOUT_S = 0.25
"""Longest a reply waits for a prefill in flight; past it the reply goes without it."""


def can_prefill(llm: Any) -> bool:
    """The language model port offers prefills (:meth:`ChatService.prefill`)."""
    return callable(getattr(llm, "prefill", None))


class Prefill:
    def __init__(self, llm: Any, spawn: Callable[[Any, str], asyncio.Task]) -> None:
        self.llm, self.spawn = llm, spawn
        self._task: asyncio.Task | None = None
        self.cached_tokens: int | None = None
        """The last finished prefill's reused prompt tokens (for the logs and tests)."""

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self, plan: Callable[[], Awaitable[Any]]) -> bool:
        """Prefill the prompt of the plan that ``plan()`` builds; False when one is already
        in flight (the next partial brings newer words anyway)."""
        if self.running or not can_prefill(self.llm):
            return False
        self._task = self.spawn(self._run(plan), "prefill")
        return True

    async def _run(self, plan: Callable[[], Awaitable[Any]]) -> None:
        try:
            built = await plan()
            if built.params.seed is not None:
                return  # a seeded request never reuses a cache: nothing to prepare
            result = await self.llm.prefill(built.messages, built.params, built.prompt)
            self.cached_tokens = result.cached_tokens
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an aid: the reply builds its prompt as ever
            log.info("prefill failed: %s", exc)

    async def settled(self) -> None:
        """Wait (at most :data:`SETTLE_TIMEOUT_S`) for the prefill in flight: its
        generator is back in the pool only when it ends."""
        task = self._task
        if task is None or task.done():
            return
        await asyncio.wait({task}, timeout=SETTLE_TIMEOUT_S)

