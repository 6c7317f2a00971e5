"""Error rates that transcripts are compared by: word error rate (English and other
languages written with spaces) and character error rate (Korean, where a word is a whole
spacing unit and one wrong syllable would count as a wrong word). numpy-free."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence


def normalize(text: str) -> list[str]:
    """Lower-case words without punctuation ("Hello, world!" -> ["hello", "world"])."""
    return re.sub(r"[^a-z0-9' ]", " ", text.lower().replace("-", " ")).split()


def characters(text: str) -> list[str]:
    """Letters and digits only, any script, after the Korean normaliser (so "3시" and "세 시"
    agree), spaces and punctuation dropped ("서울은 어디, 있나요?" -> 서 울 은 어 디 있 나 요)."""
    from export.tts.runtime.normalize import normalize as spoken

    text = unicodedata.normalize("NFC", spoken(text, "ko").lower())
    return [c for c in text if unicodedata.category(c)[0] in "LN"]


def word_errors(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Levenshtein distance over tokens (substitutions, insertions, deletions)."""
    row = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        prev, row[0] = row[0], i
        for j, hyp in enumerate(hypothesis, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ref != hyp))
    return row[-1]


def wer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus WER: all word errors over all reference words."""
    return _rate(references, hypotheses, normalize)


def cer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus CER: character errors over all reference characters, each sentence's errors
    counted up to its length (a recogniser looping into a hundred repeated syllables costs
    that sentence, not the whole set).

    A reference may list other ways to write what is said, separated by ``" | "``:
    ``"오늘 meeting은 | 오늘 미팅은"`` (a Korean listener writes an English word either
    way). The transcript counts against the one it is closest to; the first, written form
    sets the sentence's length."""
    errors = units = 0
    for reference, hypothesis in zip(references, hypotheses, strict=True):
        heard = characters(hypothesis)
        forms = [characters(form) for form in reference.split(" | ")]
        errors += min(min(word_errors(form, heard), len(form)) for form in forms)
        units += len(forms[0])
    return errors / max(units, 1)


def _rate(references: Sequence[str], hypotheses: Sequence[str], split) -> float:  # type: ignore[no-untyped-def]
    errors = units = 0
    for reference, hypothesis in zip(references, hypotheses, strict=True):
        ref = split(reference)
        errors += word_errors(ref, split(hypothesis))
        units += len(ref)
    return errors / max(units, 1)
