"""Steady client traffic for version swaps: a few tasks sending requests back to back."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Send = Callable[[], Awaitable[str]]
"""One request; returns what identifies the version that answered (e.g. a manifest id)."""


@dataclass
class Traffic:
    send: Send
    tasks: int = 3
    max_requests: int = 5000
    """Bound per task, so a stuck test ends."""
    answers: list[list[str]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _running: list[asyncio.Task[None]] = field(default_factory=list)

    async def __aenter__(self) -> Traffic:
        self.answers = [[] for _ in range(self.tasks)]
        self._running = [asyncio.create_task(self._loop(i)) for i in range(self.tasks)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        await asyncio.gather(*self._running)

    async def _loop(self, index: int) -> None:
        for _ in range(self.max_requests):
            if self._stop.is_set():
                return
            try:
                self.answers[index].append(await self.send())
            except Exception as exc:  # every failure counts; the test asserts none
                self.errors.append(exc)
                await asyncio.sleep(0.01)

    async def until_answered_by(self, answer: str, count: int = 5,
                                timeout_s: float = 60) -> None:
        """Wait until every task got ``count`` answers from ``answer`` in a row at its end."""
        async def seen() -> None:
            # a condition over every task's answers: polling is the plain way to wait
            while not all(a[-count:] == [answer] * count for a in self.answers):  # noqa: ASYNC110
                await asyncio.sleep(0.02)

        await asyncio.wait_for(seen(), timeout_s)

    def total(self) -> int:
        return sum(len(a) for a in self.answers)

    def phases(self, index: int) -> list[str]:
        """The distinct answers a task saw, in order (e.g. [id1, id2, id1])."""
        return [k for k, _ in itertools.groupby(self.answers[index])]
