"""Sentence splitting for streaming: each sentence is synthesised and sent on its own.

Splits after ``. ! ? …`` (and the full-width ``。！？``) followed by a space or the end,
and at line breaks; closing quotes and brackets stay with their sentence. A full stop
after a known abbreviation (Mr., Dr., e.g.) or a single capital (J. Smith) does not
end a sentence. Korean sentences end with the same marks (…다. …요?), so one rule
covers both languages.
"""

from __future__ import annotations

import re

ABBREVIATIONS = frozenset([
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "etc", "e.g", "i.e", "a.m",
    "p.m", "no", "fig", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct",
    "nov", "dec", "inc", "ltd", "co", "corp", "approx", "dept"])
_BOUNDARY = re.compile(r"([.!?…。！？]+[\"'”’)\]»]*)(\s+|$)|\n\s*")


def split_sentences(text: str) -> list[str]:
    """Non-empty sentences of ``text``, in order, stripped."""
    sentences: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        end = match.end(1) if match.group(1) else match.start()
        candidate = text[start:end]
        if match.group(1) and match.group(1).startswith(".") and _abbreviation(candidate):
            continue
        if match.group(1) and text[match.end():match.end() + 1].islower():
            continue  # "Yes… maybe", "e.g. this": the sentence goes on
        if candidate.strip():
            sentences.append(candidate.strip())
        start = match.end()
    if text[start:].strip():
        sentences.append(text[start:].strip())
    return sentences


def _abbreviation(candidate: str) -> bool:
    words = candidate.rstrip(".").split()
    if not words:
        return False
    last = words[-1].lower().lstrip("(\"'")
    return last in ABBREVIATIONS or (len(last) == 1 and last.isalpha() and
                                     words[-1][-1].isupper())
