"""Word and character error rates: what the STT benchmark and tests compare transcripts
by (one implementation, :mod:`export.stt.scoring`, also scores versions at export)."""

from collections.abc import Callable, Sequence

from export.stt.scoring import cer, normalize, wer, word_errors

__all__ = ["cer", "error_rate", "normalize", "wer", "word_errors"]


def error_rate(language: str) -> tuple[str, Callable[[Sequence[str], Sequence[str]], float]]:
    """How a language's transcripts are scored: ``("cer", cer)`` for Korean (its words are
    spaced loosely), ``("wer", wer)`` otherwise."""
    return ("cer", cer) if language == "ko" else ("wer", wer)
