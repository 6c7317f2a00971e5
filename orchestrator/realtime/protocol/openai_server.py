"""Engine events -> OpenAI's server events (GA or beta), for ``WS /v1/realtime``; the
lifecycle it sends is drawn in :mod:`.openai`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from orchestrator.realtime.protocol.item_types import (
    Item,
    assistant_item,
    assistant_part,
    user_audio_item,
)
from orchestrator.realtime.protocol.openai import Dialect
from orchestrator.realtime.protocol.openai_fields import GA_FORMATS
from orchestrator.realtime.protocol.server_events import AudioCommitted as EngineCommitted
from orchestrator.realtime.protocol.server_events import (
    ItemCreated,
    ItemRetrieved,
    OutputItemAdded,
    OutputItemDone,
    ResponseAudioDelta,
    ResponseAudioTranscriptDelta,
    ResponseCreated,
    ResponseDone,
    ResponseInfo,
    ResponseTextDelta,
    SessionCreated,
    SessionUpdated,
)
from orchestrator.realtime.protocol.server_events import TranscriptionCompleted as EngineTranscript
from orchestrator.realtime.protocol.session_types import SessionConfig, new_id

_GA_FORMAT_NAMES = {v: k for k, v in GA_FORMATS.items()}
_DELTAS = {"ga": {"text": "response.output_text", "audio": "response.output_audio",
                  "transcript": "response.output_audio_transcript"},
           "beta": {"text": "response.text", "audio": "response.audio",
                    "transcript": "response.audio_transcript"}}
_CANCEL_REASONS = {"turn_detected": "turn_detected"}  # the rest: the client cancelled
# OpenAI's incomplete reasons are max_output_tokens and content_filter (a server-side filter
# cut the reply off); a reply stopped in a loop is the latter, with this server's own
# reason beside it as "detail" (the SDKs' types take only OpenAI's reasons).
_INCOMPLETE_REASONS = {"max_output_tokens": "max_output_tokens"}


@dataclass(slots=True)
class _Reply:
    """A response's message item as it is translated (the reply's own, or another
    message of the response, e.g. a filler said while MCP calls run)."""

    id: str
    item_id: str
    audio: bool
    started: bool = False
    previous_item_id: str | None = None
    output_index: int = 0
    announced: bool = False
    """Its ``output_item.added`` has been sent (the reply's own is implied by a delta)."""
    more_output: list[dict[str, Any]] = field(default_factory=list)
    """The response's other messages, ended, for ``response.done``'s output."""


class ServerTranslator:
    """Engine events -> the OpenAI server events of ``dialect`` (a list per event).

    ``config``: the session's current state (response objects report its voice and
    format); ``rate_limits``: the key's limits now, for ``rate_limits.updated``."""

    def __init__(self, dialect: Dialect, *, model: str, config: Callable[[], SessionConfig],
                 rate_limits: Callable[[], list[dict[str, Any]]] = list) -> None:
        self.dialect, self.model, self.config = dialect, model, config
        self.rate_limits = rate_limits
        self._names = _DELTAS[dialect]
        self._replies: dict[str, _Reply] = {}
        self._messages: dict[str, _Reply] = {}  # a response's other messages, by item id
        self._last_item: str | None = None

    def __call__(self, event: Any) -> list[Any]:
        match event:
            case SessionCreated() | SessionUpdated():
                name = type(event).__struct_config__.tag
                if self.dialect == "beta" and event.session.type == "transcription":
                    name = "transcription_" + name  # transcription_session.updated
                return [{"type": name, "event_id": event.event_id,
                         "session": self.session(event.session)}]
            case ResponseCreated(response=info):
                self._replies[info.id] = _Reply(info.id, info.item_id or new_id("item"),
                                                "audio" in info.modalities)
                return [{"type": "response.created", "event_id": event.event_id,
                         "response": self.response(info, [])}]
            case ResponseTextDelta():
                reply = self._reply_of(event)
                if reply is not None and reply.audio:
                    return []  # the transcript deltas say it
                return self._delta(event, "text", reply)
            case ResponseAudioTranscriptDelta():
                return self._delta(event, "transcript", self._reply_of(event))
            case ResponseAudioDelta():
                return self._delta(event, "audio", self._reply_of(event))
            case ResponseDone(response=info):
                return self._done(event, info)
            case OutputItemAdded(item=Item() as item):
                return self._message_added(event, item)
            case OutputItemDone(item=Item() as item) if item.id in self._messages:
                return self._message_done(self._messages.pop(item.id), item)
            case OutputItemAdded(item=item):
                previous, self._last_item = self._last_item, item.id
                return [msgspec.to_builtins(event),
                        *self._item_added(item, previous, done=False)]
            case OutputItemDone(item=item):
                out = [msgspec.to_builtins(event)]
                if self.dialect == "ga":
                    out.append({"type": "conversation.item.done", "event_id": new_id("event"),
                                "previous_item_id": None, "item": self.item(item)})
                return out
            case EngineCommitted():
                previous, self._last_item = self._last_item, event.item_id
                return [msgspec.to_builtins(event),
                        *self._item_added(user_audio_item(event.item_id, None), previous,
                                          done=False)]
            case EngineTranscript():
                out = [msgspec.to_builtins(event)]
                if self.dialect == "ga":
                    item = user_audio_item(event.item_id, event.transcript)
                    out.append({"type": "conversation.item.done", "event_id": new_id("event"),
                                "previous_item_id": None, "item": self.item(item)})
                return out
            case ItemCreated(item=item):
                previous, self._last_item = self._last_item, item.id
                return self._item_added(item, previous, done=True)
            case ItemRetrieved(item=item):
                return [{"type": "conversation.item.retrieved", "event_id": event.event_id,
                         "item": self.item(item)}]
            case {"type": "error", "error": dict(error)}:
                return [{"type": "error", "event_id": new_id("event"),
                         "error": {"param": None, **error, "event_id": event.get("event_id")}}]
            case _:
                return [event]

    # --- shapes --------------------------------------------------------------------------

    def session(self, config: SessionConfig) -> dict[str, Any]:
        transcription = msgspec.to_builtins(config.input_audio_transcription)
        turn_detection = msgspec.to_builtins(config.turn_detection)
        noise_reduction = msgspec.to_builtins(config.noise_reduction)
        if config.type == "transcription":
            return self._transcription_session(config, transcription, turn_detection,
                                               noise_reduction)
        common = {"object": "realtime.session", "id": config.id, "model": self.model,
                  "instructions": config.instructions,
                  "tools": msgspec.to_builtins([*config.tools, *config.mcp_tools]),
                  "tool_choice": msgspec.to_builtins(config.tool_choice),
                  "tracing": None, "input_sample_rate": config.input_sample_rate,
                  "output_sample_rate": config.output_sample_rate,
                  "temperature": config.temperature,
                  "truncation": msgspec.to_builtins(config.truncation)}
        if self.dialect == "beta":
            return {**common, "modalities": config.modalities, "voice": config.voice,
                    "speed": config.speed,
                    "input_audio_format": config.input_audio_format,
                    "output_audio_format": config.output_audio_format,
                    "input_audio_transcription": transcription,
                    "input_audio_noise_reduction": noise_reduction,
                    "turn_detection": turn_detection,
                    "max_response_output_tokens": config.max_response_output_tokens}
        return {**common, "type": "realtime",
                "output_modalities": ["audio"] if "audio" in config.modalities else ["text"],
                "max_output_tokens": config.max_response_output_tokens,
                "prompt": None, "include": None,
                "audio": {
                    "input": {"format": _ga_audio_format(config.input_audio_format,
                                                         config.input_sample_rate),
                              "transcription": transcription,
                              "turn_detection": turn_detection,
                              "noise_reduction": noise_reduction},
                    "output": {"format": _ga_audio_format(config.output_audio_format,
                                                          config.output_sample_rate),
                               "voice": config.voice, "speed": config.speed}}}

    def _transcription_session(self, config: SessionConfig, transcription: Any,
                               turn_detection: Any, noise_reduction: Any) -> dict[str, Any]:
        """OpenAI's transcription session: GA ``type: "transcription"`` with ``audio.input``
        only; beta: the ``transcription_session`` object (no client secret here)."""
        common = {"object": "realtime.transcription_session", "id": config.id,
                  "include": None}
        if self.dialect == "beta":
            return {**common, "client_secret": None, "modalities": ["text"],
                    "input_audio_format": config.input_audio_format,
                    "input_audio_transcription": transcription,
                    "turn_detection": turn_detection,
                    "input_audio_noise_reduction": noise_reduction}
        return {**common, "type": "transcription", "audio": {"input": {
            "format": _ga_audio_format(config.input_audio_format, config.input_sample_rate),
            "transcription": transcription, "turn_detection": turn_detection,
            "noise_reduction": noise_reduction}}}

    def item(self, item: Any) -> dict[str, Any]:
        """An item in this dialect (GA names assistant content output_text / output_audio)."""
        data = msgspec.to_builtins(item)
        if self.dialect == "ga" and isinstance(item, Item) and item.role == "assistant":
            data["content"] = [{**part, "type": "output_" + part["type"]}
                               for part in data["content"]]
        return data

    def response(self, info: ResponseInfo, output: list[dict[str, Any]]) -> dict[str, Any]:
        config = self.config()
        details = info.status_details
        if details is not None and details.get("type") == "cancelled":
            details = {"type": "cancelled",
                       "reason": _CANCEL_REASONS.get(details.get("reason"), "client_cancelled")}
        elif details is not None and details.get("type") == "incomplete":
            reason = details.get("reason")
            details = {"type": "incomplete",
                       "reason": _INCOMPLETE_REASONS.get(reason, "content_filter")}
            if reason not in _INCOMPLETE_REASONS:
                details["detail"] = reason
        usage = None
        if info.usage is not None:
            u = info.usage
            usage = {"total_tokens": u.total_tokens, "input_tokens": u.input_tokens,
                     "output_tokens": u.output_tokens,
                     "input_token_details": {"text_tokens": u.input_tokens, "audio_tokens": 0,
                                             "cached_tokens": u.cached_tokens},
                     "output_token_details": {"text_tokens": u.output_tokens,
                                              "audio_tokens": 0}}
        audio = "audio" in info.modalities
        data: dict[str, Any] = {
            "object": "realtime.response", "id": info.id, "status": info.status,
            "status_details": details, "output": output, "usage": usage,
            "conversation_id": config.id, "metadata": info.metadata,
            "max_output_tokens": config.max_response_output_tokens}
        if info.timings is not None:
            data["timings"] = msgspec.to_builtins(info.timings)  # extension: stage timings
        if self.dialect == "beta":
            return {**data, "modalities": info.modalities, "voice": config.voice,
                    "output_audio_format": config.output_audio_format,
                    "temperature": config.temperature}
        return {**data, "output_modalities": ["audio"] if audio else ["text"],
                "audio": {"output": {"format": _ga_audio_format(config.output_audio_format,
                                                                config.output_sample_rate),
                                     "voice": config.voice}}}

    # --- lifecycle -----------------------------------------------------------------------

    def _item_added(self, item: Item, previous: str | None, *, done: bool) -> list[Any]:
        data = self.item(item)
        if self.dialect == "beta":
            return [{"type": "conversation.item.created", "event_id": new_id("event"),
                     "previous_item_id": previous, "item": data}]
        out = [{"type": "conversation.item.added", "event_id": new_id("event"),
                "previous_item_id": previous, "item": data}]
        if done:
            out.append({"type": "conversation.item.done", "event_id": new_id("event"),
                        "previous_item_id": previous, "item": data})
        return out

    def _reply_of(self, event: Any) -> _Reply | None:
        return self._messages.get(event.item_id) or self._replies.get(event.response_id)

    def _ids(self, reply: _Reply) -> dict[str, Any]:
        return {"response_id": reply.id, "item_id": reply.item_id,
                "output_index": reply.output_index, "content_index": 0}

    def _delta(self, event: Any, kind: str, reply: _Reply | None) -> list[Any]:
        delta = {"type": f"{self._names[kind]}.delta", "event_id": event.event_id,
                 "response_id": event.response_id, "item_id": event.item_id,
                 "output_index": event.output_index, "content_index": 0, "delta": event.delta}
        if reply is None or reply.started:
            return [delta]
        reply.started = True
        out = []
        if not reply.announced:
            reply.announced = True
            reply.previous_item_id, self._last_item = self._last_item, reply.item_id
            started = assistant_item(reply.item_id, "", reply.audio, "in_progress")
            out += [{"type": "response.output_item.added", "event_id": new_id("event"),
                     "response_id": reply.id, "output_index": reply.output_index,
                     "item": self.item(started)},
                    *self._item_added(started, reply.previous_item_id, done=False)]
        part = {**assistant_part("", reply.audio), **({"audio": None} if reply.audio else {})}
        return [*out, {"type": "response.content_part.added", "event_id": new_id("event"),
                       **self._ids(reply), "part": part}, delta]

    def _message_added(self, event: OutputItemAdded, item: Item) -> list[Any]:
        """A message of the response other than the reply's own begins."""
        reply = self._replies.get(event.response_id)  # the message speaks as its response
        audio = reply.audio if reply is not None else \
            any(part.get("type") == "audio" for part in item.content)
        message = _Reply(event.response_id, item.id, audio, output_index=event.output_index,
                         announced=True, previous_item_id=self._last_item)
        self._messages[item.id], self._last_item = message, item.id
        return [{"type": "response.output_item.added", "event_id": event.event_id,
                 "response_id": event.response_id, "output_index": event.output_index,
                 "item": self.item(item)},
                *self._item_added(item, message.previous_item_id, done=False)]

    def _message_done(self, message: _Reply, item: Item) -> list[Any]:
        text = next((part.get("transcript") or part.get("text") or ""
                     for part in item.content), "")
        data = self.item(item)
        out = self._part_done(message, text) if message.started else []
        out += self._item_done(message, data)
        reply = self._replies.get(message.id)
        if reply is not None:
            reply.more_output.append(data)
        return out

    def _item_done(self, reply: _Reply, data: dict[str, Any]) -> list[Any]:
        """A message item ended: ``response.output_item.done`` (and GA's
        ``conversation.item.done``)."""
        out = [{"type": "response.output_item.done", "event_id": new_id("event"),
                "response_id": reply.id, "output_index": reply.output_index, "item": data}]
        if self.dialect == "ga":
            out.append({"type": "conversation.item.done", "event_id": new_id("event"),
                        "previous_item_id": reply.previous_item_id, "item": data})
        return out

    def _part_done(self, reply: _Reply, text: str) -> list[Any]:
        """The ends of a message's content: its audio and transcript, or its text."""
        ids = self._ids(reply)
        out: list[Any] = []
        if reply.audio:
            out.append({"type": f"{self._names['audio']}.done",
                        "event_id": new_id("event"), **ids})
            out.append({"type": f"{self._names['transcript']}.done",
                        "event_id": new_id("event"), **ids, "transcript": text})
        else:
            out.append({"type": f"{self._names['text']}.done",
                        "event_id": new_id("event"), **ids, "text": text})
        out.append({"type": "response.content_part.done", "event_id": new_id("event"),
                    **ids, "part": assistant_part(text, reply.audio)})
        return out

    def _done(self, event: ResponseDone, info: ResponseInfo) -> list[Any]:
        out: list[Any] = []
        for open_id in [k for k, m in self._messages.items() if m.id == info.id]:
            message = self._messages.pop(open_id)  # never ended: ended with the response
            out += self._message_done(message, assistant_item(
                message.item_id, "", message.audio, "incomplete"))
        reply = self._replies.pop(info.id, None)
        output: list[dict[str, Any]] = []
        if reply is not None and reply.started:
            out += self._part_done(reply, info.text)
            status = "completed" if info.status == "completed" else "incomplete"
            item = self.item(assistant_item(reply.item_id, info.text, reply.audio, status))
            output.append(item)
            out += self._item_done(reply, item)
        output += [self.item(call) for call in info.function_calls]
        output += reply.more_output if reply is not None else []
        out.append({"type": "response.done", "event_id": event.event_id,
                    "response": self.response(info, output)})
        out.append({"type": "rate_limits.updated", "event_id": new_id("event"),
                    "rate_limits": self.rate_limits()})
        return out


def _ga_audio_format(fmt: str, rate: int) -> dict[str, Any]:
    name = _GA_FORMAT_NAMES[fmt]
    return {"type": name, "rate": rate} if name == "audio/pcm" else {"type": name}
