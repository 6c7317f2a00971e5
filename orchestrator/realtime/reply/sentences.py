"""Sentence chunking of streamed LLM text, so speech synthesis starts on the first sentence.

Where a sentence ends is decided by the tts model's own splitter
(``export/tts/runtime/sentences.py``: abbreviations, closing quotes, CJK marks), so each
chunk sent to the tts model is one sentence by its rules too. What this adds for
streaming: a sentence is released as soon as the text after it shows that it ended, and
text that runs on past ``max_chars`` is cut at the last comma or space, so a long
unpunctuated reply still starts speaking early.

The first chunk of a reply goes sooner still: at the first clause boundary (a comma,
semicolon, colon or dash followed by more text, or a Korean word ending in a
connective that closes a clause: 는데, 지만, 면서, 어서, 니까) once
``first_clause_words`` words have come, so the voice starts after a few tokens rather
than a whole sentence; the rest goes by sentence, which speaks more naturally. A first
chunk that has found no clause boundary yet goes once it has ``first_chunk_max_words``
whole words, cut after the last of them: about a second of speech (3 words by default),
during which the rest is generated and synthesised (`bench voice`: no playback gap in
one session, one in 32 turns with two).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator

from export.tts.runtime.sentences import split_complete

CLAUSE_END = re.compile(r"[,;:\u2013\u2014](?=\s+\S)|\s-(?=\s+\S)"
                        r"|(?<=[\uac00-\ud7a3])(?:는데|지만|면서|[어아해]서|니까)(?=\s+\S)")


class SentenceChunker:
    def __init__(self, max_chars: int = 240, first_clause_words: int = 0,
                 first_chunk_max_words: int = 0) -> None:
        self.max_chars = max_chars
        self.first_clause_words = first_clause_words
        self.first_chunk_max_words = first_chunk_max_words  # 0: no word limit
        self._buffer = ""
        self._released = False  # a chunk has gone out (the first-clause rule is spent)

    def feed(self, text: str) -> list[str]:
        """Add streamed text; return the chunks it completed."""
        out, self._buffer = split_complete(self._buffer + text)
        if not out and not self._released and self.first_clause_words:
            out = self._first_clause()
        self._released = self._released or bool(out)
        while len(self._buffer) > self.max_chars:
            window = self._buffer[:self.max_chars]
            cut = max(window.rfind(","), window.rfind(" "))
            cut = cut + 1 if cut > 0 else self.max_chars
            piece, self._buffer = self._buffer[:cut].strip(), self._buffer[cut:]
            if piece:
                out.append(piece)
        return out

    def _first_clause(self) -> list[str]:
        for match in CLAUSE_END.finditer(self._buffer):
            clause = self._buffer[:match.end()].strip()
            if len(clause.split()) >= self.first_clause_words:
                self._buffer = self._buffer[match.end():].lstrip()
                return [clause]
        whole = self._buffer[:self._words_end()]
        limit = self.first_chunk_max_words
        if limit and len(whole.split()) >= max(limit, self.first_clause_words):
            self._buffer = self._buffer[len(whole):]
            return [whole.strip()]
        return []

    def cut(self) -> list[str]:
        """Release what is whole now, for a listener who would otherwise wait: up to the last
        clause boundary, else up to the last whole word (nothing when no word is whole)."""
        clauses = list(CLAUSE_END.finditer(self._buffer))
        end = clauses[-1].end() if clauses else self._words_end()
        piece = self._buffer[:end].strip()
        if not piece:
            return []
        self._buffer = self._buffer[end:].lstrip()
        self._released = True
        return [piece]

    def _words_end(self) -> int:
        """Where the words whitespace has ended stop (the last word may still go on)."""
        return max(self._buffer.rfind(" "), self._buffer.rfind("\n")) + 1

    def drop_last(self, chars: int) -> None:
        """Take back up to ``chars`` characters not released yet (a loop's repeats)."""
        self._buffer = self._buffer[:max(len(self._buffer) - chars, 0)]

    def flush(self) -> list[str]:
        """The rest at the end of the stream (it may still hold several sentences)."""
        out, rest = split_complete(self._buffer, final=True)
        self._buffer = ""
        return out + ([rest.strip()] if rest.strip() else [])


async def sentences(deltas: AsyncIterable[str], max_chars: int = 240,
                    first_clause_words: int = 0,
                    first_chunk_max_words: int = 0) -> AsyncIterator[str]:
    """The chunker as a pipeline stage."""
    chunker = SentenceChunker(max_chars, first_clause_words, first_chunk_max_words)
    async for delta in deltas:
        for sentence in chunker.feed(delta):
            yield sentence
    for sentence in chunker.flush():
        yield sentence


def cut_mid_clause(chunk: str) -> bool:
    """A chunk cut at a word, not at punctuation (the first chunk's word limit, or an
    early chunk when playback runs low): the voice ends it with the silence of a finished
    utterance (170 ms for Piper's joe), which between two words of one clause is a
    stumble, so all but 40 ms of it is dropped."""
    return bool(chunk) and chunk[-1].isalnum()
