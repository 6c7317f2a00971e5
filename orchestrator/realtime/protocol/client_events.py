"""Client -> server events of ``/ws/{user_id}/{session_id}`` (the beta names of OpenAI's
Realtime protocol, with extensions): one tagged union (``type`` is the tag), decoded in a
single step; an unknown ``type`` or a bad field fails decoding with a message that names
the field (:func:`invalid_event`). ``/v1/realtime`` translates OpenAI's GA or beta events
into these (:mod:`.openai`)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

import msgspec

from orchestrator.errors import InvalidRequest
from orchestrator.realtime.protocol.session_types import (
    CallId,
    EventId,
    ItemId,
    Modality,
    SessionUpdate,
    ToolChoice,
    ToolName,
    Tools,
    ToolText,
)
from orchestrator.validation import Instructions, VoiceName

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
