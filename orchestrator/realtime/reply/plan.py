"""What a reply is decided to be before it starts (:class:`ReplyPlan`, :class:`Pacing`)
and what it turned out to be (:class:`ReplyOutcome`); what of it was spoken is
:mod:`.playback`'s."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from orchestrator.errors import websocket_error_event
from orchestrator.realtime.protocol.item_types import FunctionCall
from orchestrator.realtime.protocol.server_events import Usage
from orchestrator.realtime.timings import Timings


@dataclass(frozen=True, slots=True)
class Pacing:
    """How a spoken reply is cut for speech, and when it is stopped (``REPLY_*`` settings)."""

    first_clause_words: int = 0
    """Speak the first clause once it has this many words (0: whole sentences only)."""
    first_chunk_max_words: int = 0
    """Speak the first chunk after this many words even without a clause (0: no limit)."""
    stop_loops: bool = True
    """Stop generating once the text repeats itself back to back (:mod:`.repetition`)."""

    @classmethod
    def from_settings(cls, settings: Any) -> Pacing:
        return cls(settings.reply_first_clause_words, settings.reply_first_chunk_max_words,
                   settings.reply_stop_loops)


@dataclass(slots=True)
class ReplyPlan:
    """Everything a reply needs, decided before it starts."""

    response_id: str
    item_id: str
    messages: list[Any]
    params: Any
    audio: bool
    voice: str | None = None
    speed: float = 1.0
    output_rate: int | None = 24000
    """Sample rate of the sent audio; None: the voice's own (its first chunk's)."""
    output_format: str = "pcm16"
    """How sent audio is encoded (see ``audio.AUDIO_FORMATS``)."""
    end_of_speech: float | None = None
    """time.perf_counter() of the user's end of speech (voice-to-voice starts there)."""
    pacing: Pacing = Pacing()
    live: bool = True
    """The client plays the audio as it arrives (realtime), so a chunk goes early when its
    playback would run dry; False: the whole reply is collected (``/api/voice-chat``)."""
    voice_languages: frozenset[str] | None = None
    """The base languages the voice speaks, when known: a sentence in another language it
    cannot pronounce (Korean through an English voice) is sent as transcript only, and the
    reply carries one warning instead of unintelligible audio."""
    prompt: str | None = None
    """Function calling: the prompt rendered with the model's tool template, sent instead
    of ``messages``."""
    tool_parser: Any = None
    """Function calling: the :class:`~orchestrator.chat.tools.ToolCallParser` that splits
    the reply into words (sent, spoken) and calls (sent as function-call items)."""
    mcp_tools: frozenset[str] = frozenset()
    """Names of the offered tools an MCP server runs: their calls are kept in
    :attr:`~.stages.Reply.mcp_calls` (for :mod:`orchestrator.realtime.mcp`), not sent."""


@dataclass
class ReplyOutcome:
    status: Literal["completed", "cancelled", "failed"]
    text: str
    audio_ms: float
    timings: Timings
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    """Prompt tokens the LLM reused from its prefix cache (earlier turns, a prefill)."""
    error: BaseException | None = None
    cancel_reason: str | None = None
    function_calls: list[FunctionCall] = field(default_factory=list)
    incomplete_reason: str | None = None
    """A completed reply the model did not finish: ``max_output_tokens`` (the token limit
    cut it) or ``repetition`` (it was stopped in a loop)."""

    def reported_status(self) -> tuple[str, dict[str, Any] | None]:
        """``response.done``'s status and ``status_details``, as OpenAI reports them: a
        reply cut by its token limit is ``incomplete``."""
        if self.status == "completed" and self.incomplete_reason is not None:
            return "incomplete", {"type": "incomplete", "reason": self.incomplete_reason}
        if self.status == "cancelled":
            return "cancelled", {"type": "cancelled", "reason": self.cancel_reason}
        if self.status == "failed" and self.error is not None:
            return "failed", {"type": "failed",
                              "error": websocket_error_event(self.error)["error"]}
        return self.status, None

    def usage(self) -> Usage | None:
        if self.prompt_tokens is None and self.completion_tokens is None:
            return None
        prompt, completion = self.prompt_tokens or 0, self.completion_tokens or 0
        return Usage(input_tokens=prompt, output_tokens=completion,
                     total_tokens=prompt + completion, cached_tokens=self.cached_tokens or 0)
