"""Reuse of idle generators whose KV cache already holds a prompt's prefix.

A voice conversation resends the whole prompt every turn: system prompt, memories,
history, then the new user message. Once a stream ends its generator (with its KV cache)
goes back into this pool under the tokens it holds. The next request takes the entry with
the longest common prefix, rewinds it to that prefix and appends only the new tokens, so
its time to first token depends on the new tokens, not the whole prompt.

An entry is reused only by a request with the same search options (they are fixed when a
GenAI generator is made) and never by a seeded sampling request (a seed must reproduce the
same tokens, which a generator with a used random state would not). The pool holds at most
``capacity`` entries, dropping the least recently used; each holds its sequence's cache.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class Reuse:
    generator: Any
    cached_tokens: int
    """Leading prompt tokens already in the generator's cache (rewind target)."""


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class PrefixCache:
    def __init__(self, capacity: int, min_tokens: int = 8) -> None:
        self.capacity = capacity
        self.min_tokens = min_tokens
        self._entries: OrderedDict[int, tuple[Hashable, list[int], Any]] = OrderedDict()
        self._next_id = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def take(self, key: Hashable, prompt: Sequence[int]) -> Reuse | None:
        """The idle generator with the longest shared prefix (removed from the pool), or
        None when none shares at least ``min_tokens``. At least the prompt's last token is
        always left to append: the generator needs it to produce the next logits."""
        with self._lock:
            best, best_len = None, 0
            for entry_id, (entry_key, tokens, _) in self._entries.items():
                if entry_key != key:
                    continue
                shared = min(common_prefix(tokens, prompt), len(prompt) - 1)
                if shared > best_len:
                    best, best_len = entry_id, shared
            if best is None or best_len < self.min_tokens:
                return None
            _, _, generator = self._entries.pop(best)
        return Reuse(generator, best_len)

    def put(self, key: Hashable, tokens: Sequence[int], generator: Any) -> None:
        if self.capacity <= 0:
            return
        with self._lock:
            self._entries[self._next_id] = (key, list(tokens), generator)
            self._next_id += 1
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
