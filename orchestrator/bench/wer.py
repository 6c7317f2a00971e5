"""Word and character error rates: what the STT benchmark and tests compare transcripts
by (characters for Korean, whose words are long and spaced freely)."""

from __future__ import annotations

import re
from collections.abc import Sequence


def normalize(text: str) -> list[str]:
    """Lower-case words without punctuation ("Hello, world!" -> ["hello", "world"])."""
    return re.sub(r"[^a-z0-9' ]", " ", text.lower().replace("-", " ")).split()


def word_errors(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Levenshtein distance over words (substitutions, insertions, deletions)."""
    row = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        prev, row[0] = row[0], i
        for j, hyp in enumerate(hypothesis, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ref != hyp))
    return row[-1]


def wer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus WER: all word errors over all reference words."""
    errors = words = 0
    for reference, hypothesis in zip(references, hypotheses, strict=True):
        ref = normalize(reference)
        errors += word_errors(ref, normalize(hypothesis))
        words += len(ref)
    return errors / max(words, 1)


def korean_characters(text: str) -> list[str]:
    """Letters and digits after the Korean normaliser (so "3시" and "세 시" agree), without
    spaces or punctuation."""
    import unicodedata

    from export.tts.runtime.normalize import normalize as spoken

    return [c for c in unicodedata.normalize("NFC", spoken(text, "ko").lower()) if c.isalnum()]


def cer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus CER over Korean characters; each sentence's edits count up to its length, so
    a recogniser looping into a hundred repeated syllables costs that sentence, not the set."""
    errors = characters = 0
    for reference, hypothesis in zip(references, hypotheses, strict=True):
        ref = korean_characters(reference)
        errors += min(word_errors(ref, korean_characters(hypothesis)), len(ref))
        characters += len(ref)
    return errors / max(characters, 1)
