"""Sentence chunking of streamed LLM text, so speech synthesis starts on the first sentence.

A sentence ends at ``. ! ? …`` (and CJK ``。！？``) followed by whitespace, or at a line
break. Text that runs on past ``max_chars`` is cut at the last comma or space, so a long
unpunctuated reply still starts speaking early. ``3.5`` or ``e.g.x`` do not split
(no whitespace after the dot).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator

_END = re.compile(r"[.!?…]+[\"')\]]*(?=\s)|[。！？]+|\n+")


class SentenceChunker:
    def __init__(self, max_chars: int = 240) -> None:
        self.max_chars = max_chars
        self._buffer = ""

    def feed(self, text: str) -> list[str]:
        """Add streamed text; return the sentences it completed."""
        self._buffer += text
        out: list[str] = []
        while True:
            match = _END.search(self._buffer)
            if match is not None:
                cut = match.end()
            elif len(self._buffer) > self.max_chars:
                window = self._buffer[:self.max_chars]
                cut = max(window.rfind(","), window.rfind(" "))
                cut = cut + 1 if cut > 0 else self.max_chars
            else:
                break
            sentence, self._buffer = self._buffer[:cut].strip(), self._buffer[cut:]
            if sentence:
                out.append(sentence)
        return out

    def flush(self) -> list[str]:
        """The unterminated tail at the end of the stream."""
        rest, self._buffer = self._buffer.strip(), ""
        return [rest] if rest else []


async def sentences(deltas: AsyncIterable[str], max_chars: int = 240) -> AsyncIterator[str]:
    """The chunker as a pipeline stage."""
    chunker = SentenceChunker(max_chars)
    async for delta in deltas:
        for sentence in chunker.feed(delta):
            yield sentence
    for sentence in chunker.flush():
        yield sentence
