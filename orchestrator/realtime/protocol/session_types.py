"""The realtime session's configuration as clients set it and the server reports it
(turn detection, transcription, noise reduction, tools, MCP servers, truncation), and the
small field types every realtime event shares.

Audio formats: PCM16 little-endian mono, 16 or 24 kHz, declared per direction with
``input_sample_rate`` / ``output_sample_rate`` in ``session.update`` (default 24 kHz as
in OpenAI's ``pcm16``); or G.711 ``g711_ulaw`` / ``g711_alaw`` at 8 kHz (telephony).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType

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
