"""Word and character error rates: what the STT benchmark and tests compare transcripts
by (one implementation, :mod:`export.stt.scoring`, also scores versions at export)."""

from export.stt.scoring import cer, normalize, wer, word_errors

__all__ = ["cer", "normalize", "wer", "word_errors"]
