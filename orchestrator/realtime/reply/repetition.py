"""Stop a spoken reply that has fallen into a loop.

Small models decoding greedily (SmolLM2 at temperature 0, say) fall into loops: "The moon
is about 11.1111111…" or one clause over and over until ``max_response_output_tokens``.
Spoken, that is a minute of a broken voice; kept in the history, later replies copy it
and every prompt fills the context window. A reply whose text ends in the same piece
repeated back to back is stopped there: :class:`LoopGuard` watches the streamed text.

What counts as a loop: the text's last ``period`` characters repeated at least
``max(2, ceil(min_span / period))`` times in a row, for any period up to ``max_period``.
With ``min_span`` 32 a run needs 32 characters ("1" × 32, "ha" × 16) before it counts,
and a piece of 16 characters or more counts on its second copy: exact repeats that long
do not occur back to back in prose ("New York, New York" or "very, very" are far below).
A digit is a token of its own to SmolLM2, so a digit run costs a token per character.
"""

from __future__ import annotations

import math

MIN_SPAN = 32
MAX_PERIOD = 240


class LoopGuard:
    def __init__(self, min_span: int = MIN_SPAN, max_period: int = MAX_PERIOD) -> None:
        self.min_span = min_span
        self.max_period = max_period
        self._tail = ""  # the end of the text, as long as the longest loop checked
        self._keep = max(max_period * 2, min_span + max_period)
        self.looped = False
        self.repeated = 0
        """Once looped: the characters after the loop's first copy (what to unsay)."""

    def feed(self, text: str) -> bool:
        """Add streamed text; True once the text ends in a loop (and from then on)."""
        if self.looped or not text:
            return self.looped
        self._tail = (self._tail + text)[-self._keep:]
        self.looped = self._loops()
        return self.looped

    def _loops(self) -> bool:
        tail = self._tail
        last = tail[-1:]
        for period in range(1, min(self.max_period, len(tail) // 2) + 1):
            if tail[-1 - period] != last:  # cheap test before comparing whole copies
                continue
            repeats = max(2, math.ceil(self.min_span / period))
            span = period * repeats
            if span > len(tail):
                continue
            if tail[-span:] == tail[-period:] * repeats:
                self.repeated = span - period
                return True
        return False
