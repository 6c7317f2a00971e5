"""Realtime WebSocket events, shaped after the OpenAI Realtime API.

Client events are one tagged union (``type`` is the tag), decoded in a single step; an
unknown ``type`` or a bad field fails decoding with a message that names the field.
Server events are Structs too, encoded with msgspec; ``error`` events come from
``orchestrator.errors.websocket_error_event`` (the one error mapping).

Audio formats: PCM16 little-endian mono, 16 or 24 kHz, declared per direction with
``input_sample_rate`` / ``output_sample_rate`` in ``session.update`` (default 24 kHz as
in OpenAI's ``pcm16``); or G.711 ``g711_ulaw`` / ``g711_alaw`` at 8 kHz (telephony).

These are the events of ``/ws/{user_id}/{session_id}`` (the beta names of OpenAI's
protocol, with extensions); ``/v1/realtime`` speaks OpenAI's own GA or beta events,
translated to and from these by :mod:`.openai` and :mod:`.openai_server`.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType

from orchestrator.errors import InvalidRequest
from orchestrator.realtime.timings import Timings
from orchestrator.validation import Instructions, Language, VoiceName

SampleRate = Literal[16000, 24000]
AudioFormat = Literal["pcm16", "g711_ulaw", "g711_alaw"]
Modality = Literal["text", "audio"]
EventId = Annotated[str, msgspec.Meta(max_length=128)]
ItemId = Annotated[str, msgspec.Meta(max_length=128)]


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


# --- session configuration -------------------------------------------------------------

class ServerVad(msgspec.Struct, tag="server_vad", tag_field="type",
                forbid_unknown_fields=True):
    """OpenAI ``server_vad``: speech above ``threshold`` starts a turn; ``silence_duration_ms``
    of silence ends it; ``prefix_padding_ms`` of audio before the start is kept."""

    threshold: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.5
    prefix_padding_ms: Annotated[int, msgspec.Meta(ge=0, le=5000)] = 300
    silence_duration_ms: Annotated[int, msgspec.Meta(ge=32, le=10000)] = 500
    create_response: bool = True
    """Start a reply when a turn ends."""
    interrupt_response: bool = True
    """Barge-in: speech during a reply cancels it (a short backchannel does not)."""
    idle_timeout_ms: Annotated[int, msgspec.Meta(ge=5000, le=30000)] | None = None
    """OpenAI's idle timeout: this long without speech after a reply was sent, the server
    says ``input_audio_buffer.timeout_triggered`` and replies (once per silence)."""


Eagerness = Literal["low", "medium", "high", "auto"]


class SemanticVad(msgspec.Struct, tag="semantic_vad", tag_field="type",
                  forbid_unknown_fields=True):
    """OpenAI ``semantic_vad``: after a short silence a turn model (Smart Turn v3.2) judges
    from the words and intonation whether the user finished; a finished turn ends at
    once, an unfinished one waits longer for more speech. ``eagerness``: ``high`` ends
    turns soonest, ``low`` lets the user take their time; ``auto`` is ``medium``."""

    eagerness: Eagerness = "auto"
    create_response: bool = True
    interrupt_response: bool = True


TurnDetection = ServerVad | SemanticVad
SessionType = Literal["realtime", "transcription"]
"""``transcription``: turns are transcribed and stored, never answered (no LLM, no TTS)."""


class NoiseReduction(msgspec.Struct, forbid_unknown_fields=True):
    """OpenAI's input noise reduction: DeepFilterNet 3 on the input audio before the VAD
    and STT. ``near_field``: close microphones, noise removed in full; ``far_field``:
    distant ones, noise turned down by at most 12 dB (:mod:`~..turns.denoise`)."""

    type: Literal["near_field", "far_field"]


class InputTranscription(msgspec.Struct, forbid_unknown_fields=True):
    model: str | None = None
    language: Language | None = None
    prompt: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


ToolName = Annotated[str, msgspec.Meta(min_length=1, max_length=64,
                                         pattern=r"^[A-Za-z0-9_-]+$")]
CallId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
ToolText = Annotated[str, msgspec.Meta(max_length=100_000)]


class FunctionTool(msgspec.Struct, forbid_unknown_fields=True):
    """A function the model may call (OpenAI's realtime shape: flat, not under
    ``function`` as in chat completions)."""

    name: ToolName
    type: Literal["function"] = "function"
    description: Annotated[str, msgspec.Meta(max_length=8000)] | None = None
    parameters: dict | None = None
    """JSON Schema of the arguments."""

    def chat_shape(self) -> dict:
        """As chat templates take tools (OpenAI chat completions' shape)."""
        function: dict = {"name": self.name}
        if self.description is not None:
            function["description"] = self.description
        if self.parameters is not None:
            function["parameters"] = self.parameters
        return {"type": "function", "function": function}


class FunctionChoice(msgspec.Struct, forbid_unknown_fields=True):
    type: Literal["function"]
    name: ToolName


ToolChoice = Literal["auto", "none", "required"] | FunctionChoice
Tools = Annotated[list[FunctionTool], msgspec.Meta(max_length=128)]


class McpToolFilter(msgspec.Struct, forbid_unknown_fields=True):
    """Which of a server's tools a rule names: by name, and/or the read-only ones (those
    the server annotates with ``readOnlyHint``)."""

    tool_names: list[Annotated[str, msgspec.Meta(max_length=128)]] | None = None
    read_only: bool | None = None


class McpApprovalFilter(msgspec.Struct, forbid_unknown_fields=True):
    always: McpToolFilter | None = None
    never: McpToolFilter | None = None


class McpTool(msgspec.Struct, tag="mcp", tag_field="type", forbid_unknown_fields=True):
    """A remote MCP server whose tools the model may call (OpenAI's realtime ``mcp`` tool):
    the server lists them at ``session.update`` and runs the calls itself. ``headers``
    and ``authorization`` go to the MCP server only: the session's echo leaves them out."""

    server_label: ToolName
    server_url: Annotated[str, msgspec.Meta(max_length=2048, pattern=r"^https?://")]
    allowed_tools: list[Annotated[str, msgspec.Meta(max_length=128)]] | McpToolFilter | None \
        = None
    require_approval: Literal["always", "never"] | McpApprovalFilter | None = None
    """None: ``always``, as OpenAI's default."""
    headers: dict[Annotated[str, msgspec.Meta(max_length=256)],
                  Annotated[str, msgspec.Meta(max_length=8192)]] | None = None
    authorization: Annotated[str, msgspec.Meta(max_length=8192)] | None = None
    """An OAuth access token, sent as ``Authorization: Bearer``."""
    server_description: Annotated[str, msgspec.Meta(max_length=8000)] | None = None


McpTools = Annotated[list[McpTool], msgspec.Meta(max_length=16)]


class TokenLimits(msgspec.Struct, forbid_unknown_fields=True):
    post_instructions: Annotated[int, msgspec.Meta(ge=1)] | None = None
    """Tokens the conversation after the instructions may take before a cut (None: the
    context budget less the reply's output tokens)."""


class RetentionRatio(msgspec.Struct, tag="retention_ratio", tag_field="type",
                     forbid_unknown_fields=True):
    """OpenAI's ``retention_ratio`` truncation: once the conversation after the
    instructions exceeds ``token_limits.post_instructions``, the oldest turns go in one
    cut, down to ``retention_ratio`` of that limit; the next prompts extend the kept
    prefix until the limit is reached again (:mod:`orchestrator.realtime.truncation`)."""

    retention_ratio: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
    token_limits: TokenLimits | None = None


Truncation = Literal["auto", "disabled"] | RetentionRatio
"""``auto``: the history is cut to the context budget (a stable start, halved at a cut);
``disabled``: never cut, a reply whose prompt does not fit fails."""


class SessionConfig(msgspec.Struct):
    """The full session state, as sent in ``session.created`` / ``session.updated``."""

    id: str
    modalities: list[Modality]
    instructions: str
    voice: str | None
    speed: float
    input_audio_format: AudioFormat
    output_audio_format: AudioFormat
    input_sample_rate: SampleRate
    output_sample_rate: SampleRate
    input_audio_transcription: InputTranscription
    turn_detection: TurnDetection | None
    temperature: float
    max_response_output_tokens: int
    tools: list[FunctionTool] = msgspec.field(default_factory=list)
    tool_choice: ToolChoice = "auto"
    type: SessionType = "realtime"
    truncation: Truncation = "auto"
    mcp_tools: list[McpTool] = msgspec.field(default_factory=list)
    """MCP servers (``tools`` entries of type ``mcp`` on ``/v1/realtime``), without their
    headers and authorization."""
    noise_reduction: NoiseReduction | None = None


class SessionUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """A partial :class:`SessionConfig`; absent fields keep their value.
    ``turn_detection: null`` switches to manual turns (``input_audio_buffer.commit``);
    ``noise_reduction: null`` turns noise reduction off."""

    modalities: list[Modality] | UnsetType = UNSET
    instructions: Instructions | UnsetType = UNSET
    voice: VoiceName | UnsetType = UNSET
    speed: Annotated[float, msgspec.Meta(ge=0.25, le=4.0)] | UnsetType = UNSET
    input_audio_format: AudioFormat | UnsetType = UNSET
    output_audio_format: AudioFormat | UnsetType = UNSET
    input_sample_rate: SampleRate | UnsetType = UNSET
    output_sample_rate: SampleRate | UnsetType = UNSET
    input_audio_transcription: InputTranscription | UnsetType = UNSET
    turn_detection: TurnDetection | UnsetType | None = UNSET
    temperature: Annotated[float, msgspec.Meta(ge=0.0, le=2.0)] | UnsetType = UNSET
    max_response_output_tokens: Annotated[int, msgspec.Meta(ge=1, le=4096)] | UnsetType = UNSET
    tools: Tools | UnsetType = UNSET
    tool_choice: ToolChoice | UnsetType = UNSET
    type: SessionType | UnsetType = UNSET
    truncation: Truncation | UnsetType = UNSET
    mcp_tools: McpTools | UnsetType = UNSET
    noise_reduction: NoiseReduction | UnsetType | None = UNSET


# --- client -> server --------------------------------------------------------------------

class _Client(msgspec.Struct, tag_field="type", forbid_unknown_fields=True, kw_only=True):
    event_id: EventId | None = None


class SessionUpdateEvent(_Client, tag="session.update"):
    session: SessionUpdate = msgspec.field(default_factory=SessionUpdate)


class AudioAppend(_Client, tag="input_audio_buffer.append"):
    audio: str = ""
    """Base64 PCM16 LE mono at the session's input rate."""


class AudioCommit(_Client, tag="input_audio_buffer.commit"):
    pass


class AudioClear(_Client, tag="input_audio_buffer.clear"):
    pass


class ResponseOptions(msgspec.Struct, forbid_unknown_fields=True):
    instructions: Instructions | None = None
    modalities: list[Modality] | None = None
    voice: VoiceName | None = None
    max_response_output_tokens: Annotated[int, msgspec.Meta(ge=1, le=4096)] | None = None
    temperature: Annotated[float, msgspec.Meta(ge=0.0, le=2.0)] | None = None
    metadata: dict[str, Annotated[str, msgspec.Meta(max_length=512)]] | None = None
    """Echoed in the response's events (OpenAI's up to 16 keys)."""
    tools: Tools | None = None
    """This response's tools instead of the session's."""
    tool_choice: ToolChoice | None = None


class ResponseCreate(_Client, tag="response.create"):
    response: ResponseOptions = msgspec.field(default_factory=ResponseOptions)


class ResponseCancel(_Client, tag="response.cancel"):
    response_id: str | None = None


class ItemTruncate(_Client, tag="conversation.item.truncate"):
    item_id: ItemId
    audio_end_ms: Annotated[int, msgspec.Meta(ge=0)]
    content_index: int = 0


class ContentPart(msgspec.Struct, forbid_unknown_fields=True):
    """Text content of a conversation item (``input_text``; ``text`` / ``output_text`` for
    an assistant message)."""

    type: Literal["input_text", "text", "output_text"]
    text: Annotated[str, msgspec.Meta(max_length=100_000)]


class MessageItem(msgspec.Struct, tag="message", tag_field="type",
                  forbid_unknown_fields=True):
    """A text message added to the conversation (audio comes through the input buffer)."""

    role: Literal["user", "assistant"]
    content: Annotated[list[ContentPart], msgspec.Meta(min_length=1, max_length=16)]
    id: ItemId | None = None
    object: Literal["realtime.item"] | None = None
    status: Literal["completed", "incomplete", "in_progress"] | None = None

    def text(self) -> str:
        return "".join(part.text for part in self.content)


class NewFunctionCall(msgspec.Struct, tag="function_call", tag_field="type",
                      forbid_unknown_fields=True):
    """A call the assistant made, added by the client (replaying a conversation)."""

    call_id: CallId
    name: ToolName
    arguments: ToolText = "{}"
    id: ItemId | None = None
    object: Literal["realtime.item"] | None = None
    status: Literal["completed", "incomplete", "in_progress"] | None = None


class NewFunctionCallOutput(msgspec.Struct, tag="function_call_output", tag_field="type",
                            forbid_unknown_fields=True):
    """The result of a call the assistant made: the next reply reads it."""

    call_id: CallId
    output: ToolText
    id: ItemId | None = None
    object: Literal["realtime.item"] | None = None
    status: Literal["completed", "incomplete", "in_progress"] | None = None


class NewMcpApprovalResponse(msgspec.Struct, tag="mcp_approval_response", tag_field="type",
                             forbid_unknown_fields=True):
    """The client's answer to an ``mcp_approval_request``: approved, the call runs."""

    approval_request_id: ItemId
    approve: bool
    reason: Annotated[str, msgspec.Meta(max_length=8000)] | None = None
    id: ItemId | None = None
    object: Literal["realtime.item"] | None = None
    status: Literal["completed", "incomplete", "in_progress"] | None = None


class ItemCreate(_Client, tag="conversation.item.create"):
    item: MessageItem | NewFunctionCall | NewFunctionCallOutput | NewMcpApprovalResponse
    previous_item_id: ItemId | None = None
    """Only appending is supported: null, or the id of the conversation's last item."""


class ItemDelete(_Client, tag="conversation.item.delete"):
    item_id: ItemId


class ItemRetrieve(_Client, tag="conversation.item.retrieve"):
    item_id: ItemId


class OutputAudioClear(_Client, tag="output_audio_buffer.clear"):
    pass


ClientEvent = (SessionUpdateEvent | AudioAppend | AudioCommit | AudioClear | ResponseCreate
               | ResponseCancel | ItemTruncate | ItemCreate | ItemDelete | ItemRetrieve
               | OutputAudioClear)

client_event_decoder = msgspec.json.Decoder(ClientEvent)
_AT = re.compile(r" - at `\$\.?(.*)`$")


def invalid_event(exc: msgspec.ValidationError) -> InvalidRequest:
    """A client event of the wrong shape: the 400, with ``param`` the field msgspec names
    (``session.tools[0].name``)."""
    message = str(exc)
    found = _AT.search(message)
    return InvalidRequest(f"invalid event: {message}",
                          param=(found.group(1) or None) if found else None)


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


class FunctionCall(msgspec.Struct, omit_defaults=False):
    """A function call item: the model asks the client to run ``name``; the client
    answers with a ``function_call_output`` item of the same ``call_id``."""

    id: str
    call_id: str
    name: str
    arguments: str
    """JSON text, as the model wrote it."""
    type: str = "function_call"
    object: str = "realtime.item"
    status: Literal["completed", "incomplete", "in_progress"] = "completed"


class FunctionCallOutput(msgspec.Struct, omit_defaults=False):
    id: str
    call_id: str
    output: str
    type: str = "function_call_output"
    object: str = "realtime.item"
    status: Literal["completed", "incomplete", "in_progress"] = "completed"


class McpCall(msgspec.Struct, omit_defaults=False):
    """A call of an MCP server's tool, which the server ran (``output``) or could not
    (``error``: OpenAI's ``tool_execution_error``, ``protocol_error`` or ``http_error``)."""

    id: str
    server_label: str
    name: str
    arguments: str
    type: str = "mcp_call"
    approval_request_id: str | None = None
    output: str | None = None
    error: dict | None = None


class McpApprovalRequest(msgspec.Struct, omit_defaults=False):
    """The model wants to call an MCP tool that needs the client's approval."""

    id: str
    server_label: str
    name: str
    arguments: str
    type: str = "mcp_approval_request"


class McpApprovalResponse(msgspec.Struct, omit_defaults=False):
    id: str
    approval_request_id: str
    approve: bool
    reason: str | None = None
    type: str = "mcp_approval_response"


class McpListedTool(msgspec.Struct, omit_defaults=False):
    name: str
    input_schema: dict
    description: str | None = None
    annotations: dict | None = None


class McpListTools(msgspec.Struct, omit_defaults=False):
    """The tools an MCP server listed (those ``allowed_tools`` lets through)."""

    id: str
    server_label: str
    tools: list[McpListedTool]
    type: str = "mcp_list_tools"


OutputItem = FunctionCall | McpCall | McpApprovalRequest


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


class Item(msgspec.Struct, omit_defaults=False):
    """A conversation item as the server reports it (a message; content as OpenAI's beta
    names it: ``input_text`` / ``input_audio`` for the user, ``text`` / ``audio`` for the
    assistant)."""

    id: str
    role: Literal["user", "assistant"]
    content: list[dict]
    type: str = "message"
    object: str = "realtime.item"
    status: Literal["completed", "incomplete", "in_progress"] = "completed"


def assistant_part(text: str, audio: bool) -> dict:
    """The content part of an assistant message: its transcript, or its text."""
    return {"type": "audio", "transcript": text} if audio else {"type": "text", "text": text}


def assistant_item(item_id: str, text: str, audio: bool, status: str = "completed") -> Item:
    """An assistant message; ``in_progress`` ones have no content yet."""
    content = [] if status == "in_progress" else [assistant_part(text, audio)]
    return Item(id=item_id, role="assistant", content=content, status=status)  # type: ignore[arg-type]


def user_audio_item(item_id: str, transcript: str | None) -> Item:
    return Item(id=item_id, role="user",
                content=[{"type": "input_audio", "transcript": transcript}])


AnyItem = (Item | FunctionCall | FunctionCallOutput | McpCall | McpApprovalRequest
           | McpApprovalResponse | McpListTools)


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
