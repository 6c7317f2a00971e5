"""What the client has of a spoken reply: the audio the socket took, sentence by sentence,
and how much of it a client that plays it in real time from the first delta has heard.

Truncation, barge-in, the stored turn and the chunker's pacing all read it from here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(slots=True)
class SpokenSentence:
    text: str
    start_ms: float
    end_ms: float = 0.0


def spoken_text(spoken: list[SpokenSentence], audio_end_ms: float | None = None) -> str:
    """Sentences heard up to ``audio_end_ms``; the one cut mid-way keeps the share of its
    words that matches the share of its audio that played."""
    words: list[str] = []
    for sentence in spoken:
        if audio_end_ms is None or sentence.end_ms <= audio_end_ms:
            words.extend(sentence.text.split())
            continue
        if sentence.start_ms < audio_end_ms:
            parts = sentence.text.split()
            share = (audio_end_ms - sentence.start_ms) / max(sentence.end_ms - sentence.start_ms,
                                                             1e-9)
            words.extend(parts[:int(len(parts) * share)])
        break
    return " ".join(words)


@dataclass
class Playback:
    spoken: list[SpokenSentence] = field(default_factory=list)
    sent_ms: float = 0.0
    """Milliseconds of reply audio the socket has taken."""
    started: float | None = None
    """``time.perf_counter()`` when the first audio left: the client starts playing."""

    def sent(self, sentence: str | None, duration_ms: float) -> None:
        """A piece of audio left; ``sentence``: the sentence it begins (None: it goes on
        with the current one)."""
        if self.started is None:
            self.started = time.perf_counter()
        if sentence is not None or not self.spoken:
            self.spoken.append(SpokenSentence(sentence or "", self.sent_ms))
        self.sent_ms += duration_ms
        self.spoken[-1].end_ms = self.sent_ms

    def unspoken(self, sentence: str) -> None:
        """A sentence went out as transcript only (the voice cannot say it): no audio."""
        self.spoken.append(SpokenSentence(sentence, self.sent_ms, self.sent_ms))

    def ahead_s(self, now: float) -> float | None:
        """Seconds of sent audio the client has still to play at ``now`` (None: none sent
        yet)."""
        return None if self.started is None else self.started + self.sent_ms / 1000 - now

    def playing_at(self, at: float) -> bool:
        """The client is still playing the reply's audio at clock time ``at``."""
        ahead = self.ahead_s(at)
        return ahead is not None and ahead > 0

    def heard_ms(self, at: float) -> float:
        """Milliseconds of the audio played by clock time ``at`` (at most what was sent)."""
        if self.started is None:
            return 0.0
        return max(0.0, min(self.sent_ms, (at - self.started) * 1000))

    def text(self, audio_end_ms: float | None = None) -> str:
        """The sentences whose audio was sent, cut at ``audio_end_ms`` when given."""
        return spoken_text(self.spoken, audio_end_ms)
