"""First tokens first: decode steps of a stream that has not yet produced its first few
tokens go before the steps of streams that are continuing a reply.

On a CPU, concurrent streams share the same cores: when one session's turn ends while
another session's long reply is still decoding, the new turn's prefill and first tokens
(what its listener is waiting for, in silence) would take turns with the other reply's
continuation (which only has to stay ahead of speech already playing, a few tokens a
second). So a stream is *urgent* from its arrival until it has produced
``urgent_tokens`` tokens (about a first spoken chunk); while any stream is urgent, the
others wait before each decode step, at most ``max_wait_s`` at a time so that nothing
starves when urgent streams keep arriving. Pure threading, no GenAI: the Triton model
calls :meth:`begin`, :meth:`step` and :meth:`end` around its own steps.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass(eq=False)
class Ticket:
    urgent: bool
    waited_s: float = 0.0
    """Time this stream spent waiting for urgent streams (reported in the model's log)."""


class FirstTokensFirst:
    def __init__(self, urgent_tokens: int, max_wait_s: float = 0.5) -> None:
        self.urgent_tokens = urgent_tokens
        self.max_wait_s = max_wait_s
        self._changed = threading.Condition()
        self._urgent = 0

    def begin(self) -> Ticket:
        """A new stream, urgent until it has ``urgent_tokens`` tokens (0: the gate is off)."""
        ticket = Ticket(urgent=self.urgent_tokens > 0)
        if ticket.urgent:
            with self._changed:
                self._urgent += 1
        return ticket

    def step(self, ticket: Ticket, generated: int) -> None:
        """Before a decode step of a stream that has ``generated`` tokens: an urgent
        stream that has its first tokens stops being urgent; another waits while any
        stream is urgent (at most ``max_wait_s``)."""
        if ticket.urgent:
            if generated >= self.urgent_tokens:
                self._settle(ticket)
            return
        if not self._urgent:  # read without the lock: a step's worth of staleness is fine
            return
        started = time.perf_counter()
        with self._changed:
            self._changed.wait_for(lambda: not self._urgent, timeout=self.max_wait_s)
        ticket.waited_s += time.perf_counter() - started

    def end(self, ticket: Ticket) -> None:
        """The stream finished, failed or was cancelled."""
        if ticket.urgent:
            self._settle(ticket)

    def _settle(self, ticket: Ticket) -> None:
        ticket.urgent = False
        with self._changed:
            self._urgent -= 1
            self._changed.notify_all()
