"""Server -> client events of ``/ws/{user_id}/{session_id}``, encoded with msgspec;
``/v1/realtime`` translates them into OpenAI's own (:mod:`.openai_server`). ``error``
events come from ``orchestrator.errors.websocket_error_event`` (the one error mapping)."""

from __future__ import annotations

from typing import Literal

import msgspec

from orchestrator.realtime.protocol.item_types import (
    AnyItem,
    Item,
    OutputItem,
)
from orchestrator.realtime.protocol.session_types import (
    Modality,
    SessionConfig,
    new_id,
)
from orchestrator.realtime.timings import Timings

# --- server -> client --------------------------------------------------------------------

class _Server(msgspec.Struct, tag_field="type", kw_only=True):
    event_id: str = msgspec.field(default_factory=lambda: new_id("event"))


class SessionCreated(_Server, tag="session.created"):
    session: SessionConfig


class SessionUpdated(_Server, tag="session.updated"):
    session: SessionConfig


class SpeechStarted(_Server, tag="input_audio_buffer.speech_started"):
    audio_start_ms: int
    item_id: str


class SpeechStopped(_Server, tag="input_audio_buffer.speech_stopped"):
    audio_end_ms: int
    item_id: str


class AudioCommitted(_Server, tag="input_audio_buffer.committed"):
    item_id: str
    previous_item_id: str | None = None


class AudioCleared(_Server, tag="input_audio_buffer.cleared"):
    pass


class TimeoutTriggered(_Server, tag="input_audio_buffer.timeout_triggered"):
    """``idle_timeout_ms`` passed without speech after a reply: the silent audio since
    then (offsets in the input audio) becomes an item, and a response follows."""

    audio_start_ms: int
    audio_end_ms: int
    item_id: str


class TranscriptionDelta(_Server, tag="conversation.item.input_audio_transcription.delta"):
    item_id: str
    delta: str
    content_index: int = 0


class TranscriptionUsage(msgspec.Struct):
    seconds: float
    type: str = "duration"


class TranscriptionCompleted(_Server,
                             tag="conversation.item.input_audio_transcription.completed"):
    item_id: str
    transcript: str
    language: str | None = None
    content_index: int = 0
    usage: TranscriptionUsage | None = None


class TranscriptionFailed(_Server, tag="conversation.item.input_audio_transcription.failed"):
    item_id: str
    error: dict
    content_index: int = 0


class Usage(msgspec.Struct):
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    """Input tokens found in the LLM's prefix cache (OpenAI: ``input_token_details``)."""




class ResponseInfo(msgspec.Struct):
    id: str
    status: Literal["in_progress", "completed", "incomplete", "cancelled", "failed"] = \
        "in_progress"
    status_details: dict | None = None
    """Why a reply is not ``completed``: ``{"type": "incomplete", "reason":
    "max_output_tokens" | "repetition"}`` (the token limit cut it; it was stopped in a
    loop), ``{"type": "cancelled", "reason": ...}``, ``{"type": "failed", "error": ...}``."""
    item_id: str | None = None
    modalities: list[Modality] = msgspec.field(default_factory=lambda: ["text"])
    """``["text", "audio"]``: a spoken reply (text is its transcript)."""
    metadata: dict[str, str] | None = None
    text: str = ""
    """Assistant text actually delivered (for audio replies: what was spoken, truncated)."""
    audio_ms: float = 0.0
    usage: Usage | None = None
    timings: Timings | None = None
    function_calls: list[OutputItem] = msgspec.field(default_factory=list)
    """The calls the reply made (function calls, MCP calls and approval requests), after
    its message (OpenAI lists both in ``output``)."""


class ResponseCreated(_Server, tag="response.created"):
    response: ResponseInfo


class _ResponsePart(_Server, kw_only=True):
    response_id: str
    item_id: str
    output_index: int = 0
    content_index: int = 0


class ResponseTextDelta(_ResponsePart, tag="response.text.delta"):
    delta: str


class ResponseAudioDelta(_ResponsePart, tag="response.audio.delta"):
    delta: str
    """Base64 PCM16 LE mono at the session's output rate."""


class ResponseAudioTranscriptDelta(_ResponsePart, tag="response.audio_transcript.delta"):
    delta: str


class _OutputItem(_Server, kw_only=True):
    response_id: str
    output_index: int
    item: OutputItem | Item
    """A call, or a message other than the reply's own (a filler said while MCP calls run)."""


class OutputItemAdded(_OutputItem, tag="response.output_item.added"):
    """A function call begins, or a message other than the reply's own (the reply's
    message is implied by its deltas on ``/ws``)."""


class OutputItemDone(_OutputItem, tag="response.output_item.done"):
    pass


class _CallPart(_Server, kw_only=True):
    response_id: str
    item_id: str
    output_index: int
    call_id: str


class FunctionCallArgumentsDelta(_CallPart, tag="response.function_call_arguments.delta"):
    delta: str


class FunctionCallArgumentsDone(_CallPart, tag="response.function_call_arguments.done"):
    name: str
    arguments: str


class _McpPart(_Server, kw_only=True):
    item_id: str
    output_index: int


class McpCallArgumentsDelta(_McpPart, tag="response.mcp_call_arguments.delta"):
    response_id: str
    delta: str


class McpCallArgumentsDone(_McpPart, tag="response.mcp_call_arguments.done"):
    response_id: str
    arguments: str


class McpCallInProgress(_McpPart, tag="response.mcp_call.in_progress"):
    pass


class McpCallCompleted(_McpPart, tag="response.mcp_call.completed"):
    pass


class McpCallFailed(_McpPart, tag="response.mcp_call.failed"):
    pass


class McpListToolsInProgress(_Server, tag="mcp_list_tools.in_progress"):
    item_id: str


class McpListToolsCompleted(_Server, tag="mcp_list_tools.completed"):
    item_id: str


class McpListToolsFailed(_Server, tag="mcp_list_tools.failed"):
    item_id: str


class ResponseDone(_Server, tag="response.done"):
    response: ResponseInfo


class ItemTruncated(_Server, tag="conversation.item.truncated"):
    item_id: str
    audio_end_ms: int
    content_index: int = 0



class ItemCreated(_Server, tag="conversation.item.created"):
    item: AnyItem
    previous_item_id: str | None = None


class ItemDeleted(_Server, tag="conversation.item.deleted"):
    item_id: str


class ItemRetrieved(_Server, tag="conversation.item.retrieved"):
    item: AnyItem


class OutputAudioCleared(_Server, tag="output_audio_buffer.cleared"):
    response_id: str | None = None


ServerEvent = (SessionCreated | SessionUpdated | SpeechStarted | SpeechStopped | AudioCommitted
               | AudioCleared | TimeoutTriggered | TranscriptionDelta | TranscriptionCompleted
               | TranscriptionFailed
               | ResponseCreated | ResponseTextDelta | ResponseAudioDelta
               | ResponseAudioTranscriptDelta | OutputItemAdded | FunctionCallArgumentsDelta
               | FunctionCallArgumentsDone | OutputItemDone | ResponseDone | ItemTruncated
               | ItemCreated | ItemDeleted | ItemRetrieved | OutputAudioCleared
               | McpCallArgumentsDelta | McpCallArgumentsDone | McpCallInProgress
               | McpCallCompleted | McpCallFailed | McpListToolsInProgress
               | McpListToolsCompleted | McpListToolsFailed)

encoder = msgspec.json.Encoder()
