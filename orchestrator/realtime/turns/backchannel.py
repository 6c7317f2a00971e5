"""Backchannels: what a listener says to show they follow, not to take the turn."""

from __future__ import annotations

# What a listener says to show they are following, not to take the turn (lower case,
# punctuation stripped). Speech during a reply that transcribes to only these words, or
# to nothing (a cough), leaves the reply playing.
BACKCHANNELS = frozenset({
    "mm", "mhm", "mm-hm", "mmhmm", "mm-hmm", "hm", "hmm", "uh-huh", "uh", "um", "ah", "oh",
    "yeah", "yep", "yes", "ok", "okay", "right", "sure", "i see", "got it", "cool", "nice",
    "wow", "huh", "alright", "all right", "uh huh", "mm hmm", "oh okay", "yeah yeah",
    # Korean: 네 / 예 (yes), 응 / 어 (yeah), 음 / 흠 (hm), 아 / 오 (oh), 그래 / 맞아 (right)…
    "네", "네네", "네 네", "예", "응", "응응", "어", "음", "음음", "흠", "아", "아하", "아 네",
    "오", "그래", "그래요", "맞아", "맞아요", "그렇죠", "그렇군요", "그렇구나", "아 그렇구나"})


def is_backchannel(text: str) -> bool:
    words = " ".join("".join(c for c in text.lower() if c.isalnum() or c in " -'").split())
    return not words or words in BACKCHANNELS
