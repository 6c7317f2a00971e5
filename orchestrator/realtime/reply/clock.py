"""When each stage of a reply reached its marks, and the :class:`~..timings.Timings` they
make."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.realtime.timings import Timings


def _ms(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else round((end - start) * 1000, 3)


@dataclass
class StageClock:
    """``time.perf_counter()`` at each mark of one reply."""

    llm_start: float = 0.0
    llm_first: float | None = None
    llm_end: float | None = None
    first_sentence: float | None = None
    tts_first: float | None = None
    tts_busy: float = 0.0
    first_text_sent: float | None = None

    def timings(self, end_of_speech: float | None, first_audio_sent: float | None) -> Timings:
        """The stage timings; ``end_of_speech``: the user's (voice to voice counts from
        it to ``first_audio_sent``, the reply's :attr:`.playback.Playback.started`)."""
        return Timings(
            llm_start_ms=_ms(end_of_speech, self.llm_start or None),
            first_chunk_ms=_ms(end_of_speech, self.first_sentence),
            llm_first_token_ms=_ms(self.llm_start, self.llm_first) if self.llm_start else None,
            llm_total_ms=_ms(self.llm_start, self.llm_end) if self.llm_start else None,
            tts_first_audio_ms=_ms(self.first_sentence, self.tts_first),
            tts_total_ms=round(self.tts_busy * 1000, 3) if self.tts_first is not None else None,
            voice_to_voice_ms=_ms(end_of_speech, first_audio_sent))
