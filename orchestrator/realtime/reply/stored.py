"""One voice turn, the same for the realtime WebSocket and ``POST /api/voice-chat``.

Both paths transcribe the user's audio, store the user turn, build the reply's prompt
(stored history, recalled memories), run a :class:`~.stages.Reply` (LLM -> sentences ->
TTS) and store what was delivered with its stage timings. The pieces they share live
here, so the two cannot drift:

* :func:`prompt_messages`: history and memories for the reply; a memory failure only
  loses the memories;
* :func:`user_turn_row` / :func:`assistant_turn_row`: the stored rows and what each
  timing means;
* :class:`AudioCollector`: a reply's sink for callers that are not a socket (voice-chat
  collects the audio and returns it whole).

Timings, in both paths, count from ``end_of_speech`` (``time.perf_counter()`` when the
user's speech was complete: the VAD's end of speech, or the decoded upload):
``stt_ms`` until the transcript, ``voice_to_voice_ms`` until the first reply audio left
(for voice-chat: was produced).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from orchestrator.chat.prompt import HistoryCursor
from orchestrator.realtime.ports import VoicePorts
from orchestrator.realtime.protocol.server_events import ResponseAudioDelta
from orchestrator.realtime.protocol.session_types import Truncation
from orchestrator.realtime.reply.plan import ReplyOutcome
from orchestrator.realtime.timings import REPLY_STORED
from orchestrator.realtime.truncation import keep_history, turns_to_read
from orchestrator.speech.audio_format import MODEL_RATE
from storage.conversations import ConversationStore, NewTurn, TurnRecord

log = logging.getLogger(__name__)
MEMORY_WAIT_S = 30.0
"""How long a memory write waits for the reply being spoken to end (replies in a row)."""


@dataclass(frozen=True, slots=True)
class PromptContext:
    """Where a reply's prompt comes from: the session's stored turns and the user's memory."""

    store: ConversationStore
    session_id: str
    user_id: str
    history_turns: int
    memory_top_k: int
    memory_min_score: float
    cursor: HistoryCursor = field(default_factory=HistoryCursor)
    """Where the history starts, kept across the conversation's replies (prefix reuse)."""


async def prompt_messages(ports: VoicePorts, context: PromptContext, *,
                          instructions: str, user_text: str | None = None,
                          truncation: Truncation = "auto",
                          output_tokens: int = 0) -> list[Any]:
    """The LLM messages for a reply to the session's latest stored turn, or to
    ``user_text`` when that turn is not stored yet (a speculative turn stores it only
    once the turn has ended). ``truncation``: the session's (:mod:`..truncation`)."""
    # One turn more than the window, to know whether older turns exist (then the window's
    # start is a cut, which build_messages makes seldom, so prompts keep sharing a prefix).
    window = turns_to_read(truncation, context.history_turns)
    if user_text is None:
        history = await context.store.recent_turns(context.session_id, window + 2)
        if history and history[-1].role == "user":
            user_text = history.pop().text
    else:
        history = await context.store.recent_turns(context.session_id, window + 1)
    truncated = len(history) > window
    history = history[-window:] if window else []
    cursor: HistoryCursor | None = context.cursor
    if truncation != "auto":  # cut here; the builder gets what fits as it is
        history = keep_history(ports.prompt, history, truncation, instructions=instructions,
                               user_text=user_text, cursor=context.cursor,
                               output_tokens=output_tokens)
        truncated, cursor = False, None
    memories: list[str] = []
    if ports.memory is not None and user_text and context.memory_top_k:
        try:
            hits = await ports.memory.recall(context.user_id, user_text, context.memory_top_k,
                                             context.memory_min_score,
                                             exclude_session_id=context.session_id)
            memories = [hit.text for hit in hits]
        except Exception as exc:  # memory is an aid: answer without it
            log.warning("memory recall failed: %s", exc)
    return ports.prompt.messages(instructions=instructions, history=history,
                                 memories=memories, user_text=user_text, truncated=truncated,
                                 cursor=cursor)


def user_turn_row(text: str, language: str | None, stt_ms: float,
                  samples: int) -> NewTurn:
    return NewTurn(role="user", text=text, language=language, stt_ms=stt_ms,
                   audio_duration_ms=round(samples * 1000 / MODEL_RATE, 3))


def text_turn_row(role: str, text: str, *, tool_calls: list[dict] | None = None,
                  tool_call_id: str | None = None) -> NewTurn:
    """A message the client added (``conversation.item.create``): text, a function call,
    or a call's output (role ``tool``)."""
    return NewTurn(role=role, text=text, tool_calls=tool_calls, tool_call_id=tool_call_id)


def tool_call_rows(calls: Sequence[Any]) -> list[dict] | None:
    """Function-call items as a turn stores them."""
    return [{"call_id": c.call_id, "name": c.name, "arguments": c.arguments, "item_id": c.id}
            for c in calls] or None


def assistant_turn_row(text: str, outcome: ReplyOutcome, *, interrupted: bool,
                       tool_calls: list[dict] | None = None) -> NewTurn:
    t = outcome.timings
    return NewTurn(tool_calls=tool_calls,
        role="assistant", text=text, audio_duration_ms=round(outcome.audio_ms, 3) or None,
        **t.stored(*REPLY_STORED), interrupted=interrupted,
        incomplete_reason=incomplete_reason(outcome), prompt_tokens=outcome.prompt_tokens,
        completion_tokens=outcome.completion_tokens)


def incomplete_reason(outcome: ReplyOutcome) -> str | None:
    """Why a stored reply is not the whole answer: a failed reply (Triton lost mid-reply)
    keeps what reached the user, marked ``error``; a user's cut is ``interrupted`` alone."""
    return "error" if outcome.status == "failed" else outcome.incomplete_reason


def item_status(turn: TurnRecord) -> str:
    """A stored assistant turn's item status: ``incomplete`` when the user cut it short or
    it stopped before the model ended it (token limit, a stopped loop)."""
    return "incomplete" if turn.interrupted or turn.incomplete_reason is not None \
        else "completed"


def remember_later(ports: VoicePorts, turns: Sequence[TurnRecord],
                   spawn: Callable[[Any, str], Any],
                   after: Callable[[], Awaitable[Any]] | None = None) -> None:
    """Write memory off the reply path (embedding must not delay the next turn).
    ``after``: wait for it first, at most :data:`MEMORY_WAIT_S` (a reply being spoken:
    on two cores the embedder took CPU from the reply's first audio)."""
    memory = ports.memory
    if memory is None:
        return

    async def write() -> None:
        if after is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(MEMORY_WAIT_S):
                    await after()
        try:
            await memory.remember(list(turns))
        except Exception as exc:  # memory is an aid: the turn is stored in SQL anyway
            log.warning("memory write failed: %s", exc)

    spawn(write(), "memory")


@dataclass
class AudioCollector:
    """The :class:`~.outbound.OutboundQueue` side a :class:`~.reply.Reply` needs, for a
    caller that wants the whole reply: every event counts as sent at once, the audio
    deltas (PCM16) are kept."""

    pieces: list[np.ndarray] = field(default_factory=list)

    async def put(self, event: Any, *, response_id: str | None = None,
                  on_sent: Callable[[], None] | None = None) -> None:
        if isinstance(event, ResponseAudioDelta):
            pcm = np.frombuffer(base64.b64decode(event.delta), dtype="<i2")
            self.pieces.append(pcm.astype(np.float32) / 32768.0)
        if on_sent is not None:
            on_sent()

    async def drop_response(self, response_id: str) -> int:
        return 0

    async def settled(self, response_id: str) -> None:
        return None  # every event is taken as it is put

    def samples(self) -> np.ndarray | None:
        return np.concatenate(self.pieces) if self.pieces else None
