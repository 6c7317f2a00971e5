"""OpenAI's Realtime protocol for ``WS /v1/realtime``, over the engine of ``/ws``.

The engine speaks the events of :mod:`.events` (OpenAI's beta names with extensions).
OpenAI's official SDKs speak either the GA protocol (``client.realtime.connect``) or the
beta one (``client.beta.realtime.connect``, which sends ``OpenAI-Beta: realtime=v1``);
the two differ in the session's shape (GA nests audio settings under ``audio.input`` /
``audio.output``, with formats like ``{"type": "audio/pcm", "rate": 24000}``) and in event
names (``response.output_audio.delta`` against ``response.audio.delta``).

:class:`ClientTranslator` turns a client's text frame into an engine event; a field this
server does not honour is refused with an ``error`` naming it (never silently dropped).
:class:`~.openai_server.ServerTranslator` turns each engine event into the events
OpenAI's server sends, with the item and content-part lifecycle OpenAI clients rely on::

    response.created
    response.output_item.added · conversation.item.added (beta: .created)
    response.content_part.added
    response.output_audio_transcript.delta / response.output_audio.delta  (or output_text)
    response.output_audio.done · response.output_audio_transcript.done    (or output_text)
    response.content_part.done · response.output_item.done · conversation.item.done (GA)
    response.done · rate_limits.updated

A spoken reply sends its transcript deltas only; the engine's text deltas of it are not
sent a second time.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, Literal, get_args

import msgspec

from orchestrator.errors import InvalidRequest
from orchestrator.realtime.protocol.client_events import ClientEvent, invalid_event
from orchestrator.realtime.protocol.session_types import McpTool, SampleRate

log = logging.getLogger(__name__)
Dialect = Literal["ga", "beta"]
BETA_HEADER = "openai-beta"
MAX_OUTPUT_TOKENS = 4096  # what "inf" means here (the engine's ceiling)

GA_FORMATS = {"audio/pcm": "pcm16", "audio/pcmu": "g711_ulaw", "audio/pcma": "g711_alaw"}
IDLE_TIMEOUT_MS = (5000, 30000)  # OpenAI's range for turn_detection.idle_timeout_ms
NO_LOGPROBS = ("is not supported: the speech-to-text models served here (Whisper, "
               "Moonshine) do not return token log-probabilities")
_decoder = msgspec.json.Decoder()
_MISSING = re.compile(r"missing required field `(\w+)`")


def dialect_of(headers: Mapping[str, str]) -> Dialect:
    """``OpenAI-Beta: realtime=v1`` selects the beta protocol; anything else is GA."""
    value = headers.get(BETA_HEADER, "")
    return "beta" if "realtime=v1" in value.replace(" ", "").lower() else "ga"


def _unsupported(path: str, what: str = "is not supported by this server") -> InvalidRequest:
    return InvalidRequest(f"{path} {what}", param=path)


def _take(fields: dict[str, Any], path: str, name: str, accepted: tuple[Any, ...] = (None,),
          what: str = "is not supported by this server") -> None:
    """Remove ``name``; a value other than the ``accepted`` ones is refused."""
    if name in fields and fields.pop(name) not in accepted:
        raise _unsupported(f"{path}.{name}", what)


def _no_more(fields: dict[str, Any], path: str) -> None:
    for name, value in fields.items():
        if value is not None:
            raise _unsupported(f"{path}.{name}")


def _object(value: Any, path: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest(f"{path} must be an object", param=path)
    return dict(value)


def _tools(fields: dict[str, Any], path: str, out: dict[str, Any], *,
           mcp: bool = True) -> None:
    """``tools`` / ``tool_choice`` have the engine's shape in both dialects; ``mcp`` tools
    (a session's, not one response's) become the engine's ``mcp_tools``, checked here so
    a refusal names the entry the client sent (``session.tools[1].server_url``)."""
    if fields.get("tool_choice") is not None:
        out["tool_choice"] = fields.pop("tool_choice")
    tools = fields.pop("tools", None)
    if tools is None:
        if mcp and fields.get("mcp_tools") is not None:  # the engine's field, as on /ws
            out["mcp_tools"] = fields.pop("mcp_tools")
        return
    if not isinstance(tools, list):
        out["tools"] = tools  # refused by the engine's decoding, by name
        return
    functions, servers = [], []
    for index, tool in enumerate(tools):
        if not (isinstance(tool, dict) and tool.get("type") == "mcp"):
            functions.append(tool)
            continue
        where = f"{path}.tools[{index}]"
        if not mcp:
            raise _unsupported(f"{where}.type", "'mcp' is set per session (session.update)")
        if tool.get("connector_id") is not None:
            raise _unsupported(f"{where}.connector_id", "is not supported: name the MCP "
                               "server with server_url")
        tool = {k: v for k, v in tool.items() if v is not None and k != "connector_id"}
        try:
            servers.append(msgspec.convert(tool, McpTool))
        except msgspec.ValidationError as exc:
            problem, missing = invalid_event(exc), _MISSING.search(str(exc))
            param = f"{where}.{problem.param}" if problem.param else \
                f"{where}.{missing.group(1)}" if missing else where
            raise InvalidRequest(f"invalid MCP tool: {exc}", param=param) from None
    out["tools"] = functions
    if mcp:
        labels = [server.server_label for server in servers]
        if len(set(labels)) < len(labels):
            raise InvalidRequest("each MCP tool needs its own server_label",
                                 param=f"{path}.tools")
        # beside them, the engine's own field (a client secret's grant replays it)
        out["mcp_tools"] = [*(msgspec.to_builtins(server) for server in servers),
                            *(fields.pop("mcp_tools", None) or [])]


def _max_tokens(value: Any) -> Any:
    return MAX_OUTPUT_TOKENS if value == "inf" else value


def _output_modalities(value: Any, path: str) -> list[str]:
    """OpenAI's ``["audio"]`` is a spoken reply with its transcript: the engine's
    ``["text", "audio"]``."""
    if not isinstance(value, list) or not value or \
            not all(v in ("text", "audio") for v in value):
        raise InvalidRequest(f"{path} must be ['audio'] or ['text']", param=path)
    return ["text", "audio"] if "audio" in value else ["text"]


def _turn_detection(value: Any, path: str, *, transcription: bool = False) -> Any:
    if value is None:
        return None
    fields = _object(value, path)
    idle = fields.get("idle_timeout_ms")
    if idle is not None:
        low, high = IDLE_TIMEOUT_MS
        if transcription:
            raise _unsupported(f"{path}.idle_timeout_ms", "is not supported in a transcription "
                               "session: it creates a response, and there is none")
        if fields.get("type") != "server_vad":
            raise _unsupported(f"{path}.idle_timeout_ms", "is for server_vad only")
        if not isinstance(idle, int) or isinstance(idle, bool) or not low <= idle <= high:
            raise InvalidRequest(f"{path}.idle_timeout_ms must be an integer from {low} to "
                                 f"{high} (milliseconds)", param=f"{path}.idle_timeout_ms")
    # null fields mean "the default": leave them out
    return {k: v for k, v in fields.items() if v is not None}


def _transcription(value: Any, path: str) -> dict[str, Any]:
    fields = {k: v for k, v in _object(value, path).items() if v is not None}
    return fields


def _ga_format(value: Any, path: str) -> tuple[str, int | None]:
    fields = _object(value, path)
    kind = fields.pop("type", "audio/pcm")
    if not isinstance(kind, str) or kind not in GA_FORMATS:
        raise InvalidRequest(f"{path}.type must be one of {sorted(GA_FORMATS)}",
                             param=f"{path}.type")
    rate = fields.pop("rate", None)
    if kind != "audio/pcm" and rate not in (None, 8000):
        raise _unsupported(f"{path}.rate", "must be 8000 for G.711")
    if kind == "audio/pcm" and rate is not None and rate not in get_args(SampleRate):
        raise _unsupported(f"{path}.rate", "must be 24000 (or 16000)")
    _no_more(fields, path)
    return GA_FORMATS[kind], rate if kind == "audio/pcm" else None


def _take_format(fields: dict[str, Any], path: str, direction: str,
                 out: dict[str, Any]) -> None:
    """A GA ``format`` of ``audio.input`` / ``audio.output`` into the engine's fields."""
    if fields.get("format") is None:
        return
    fmt, rate = _ga_format(fields.pop("format"), f"{path}.format")
    out[f"{direction}_audio_format"] = fmt
    if rate:
        out[f"{direction}_sample_rate"] = rate


NOISE_REDUCTION_TYPES = ("near_field", "far_field")


def _take_noise_reduction(fields: dict[str, Any], path: str, name: str,
                          out: dict[str, Any]) -> None:
    """``{"type": "near_field" | "far_field"}`` or ``null`` (off) into the engine's
    ``noise_reduction``; another type is refused naming the field as the client sent it."""
    if name not in fields:
        return
    value = fields.pop(name)
    if value is None:
        out["noise_reduction"] = None
        return
    setting = _object(value, f"{path}.{name}")
    kind = setting.pop("type", None)
    if kind not in NOISE_REDUCTION_TYPES:
        raise InvalidRequest(f"{path}.{name}.type must be 'near_field' or 'far_field'",
                             param=f"{path}.{name}.type")
    _no_more(setting, f"{path}.{name}")
    out["noise_reduction"] = {"type": kind}


def _voice(value: Any, path: str) -> Any:
    if isinstance(value, dict):
        return value.get("id")
    return value


class ClientTranslator:
    """OpenAI client frames (GA or beta) -> engine :data:`~.events.ClientEvent`."""

    def __init__(self, dialect: Dialect, *, model: str) -> None:
        self.dialect, self.model = dialect, model

    def __call__(self, text: str) -> Any:
        try:
            raw = _decoder.decode(text)
        except msgspec.DecodeError as exc:
            raise InvalidRequest(f"malformed JSON: {exc}") from None
        except RecursionError:
            raise InvalidRequest("malformed JSON: nested too deeply") from None
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            raise InvalidRequest("an event is a JSON object with a string 'type'",
                                 param="type")
        kind = raw["type"]
        try:
            if kind == "transcription_session.update":  # beta: the answer keeps its name
                raw["type"] = "session.update"
                raw["session"] = self._beta_transcription_session(
                    _object(raw.get("session"), "session"))
            elif kind == "session.update":
                raw["session"] = self.session(_object(raw.get("session"), "session"))
            elif kind == "response.create":
                raw["response"] = self.response(_object(raw.get("response"), "response"))
            elif kind == "conversation.item.create":
                raw["item"] = self.item(_object(raw.get("item"), "item"))
        except (TypeError, ValueError, AttributeError) as exc:
            # a value of a shape no field takes (hostile input): still the client's error
            log.warning("refused a %s event of an unexpected shape: %s", kind, exc)
            raise InvalidRequest(f"invalid event: {kind} has a field of the wrong type") \
                from None
        try:
            return msgspec.convert(raw, ClientEvent)
        except msgspec.ValidationError as exc:
            raise invalid_event(exc) from None

    def _model(self, fields: dict[str, Any], path: str) -> None:
        model = fields.pop("model", None)
        if model not in (None, self.model):
            raise _unsupported(f"{path}.model", f"is {self.model!r} for this connection: "
                               "choose the model with ?model= when connecting")

    # --- session.update ------------------------------------------------------------------

    def session(self, fields: dict[str, Any]) -> dict[str, Any]:
        return self._ga_session(fields) if self.dialect == "ga" else self._beta_session(fields)

    def _ga_session(self, fields: dict[str, Any]) -> dict[str, Any]:
        path, out = "session", {}
        kind = fields.pop("type", None)
        if kind == "transcription":
            return self._ga_transcription_session(fields)
        if kind not in (None, "realtime"):
            raise _unsupported(f"{path}.type", "must be 'realtime' or 'transcription'")
        if kind is not None:
            out["type"] = kind
        self._model(fields, path)
        _tools(fields, path, out)
        for name in ("tracing", "prompt", "reasoning"):
            _take(fields, path, name)
        _take(fields, path, "include", (None, []), NO_LOGPROBS)
        if fields.get("truncation") is not None:
            out["truncation"] = fields.pop("truncation")
        if "instructions" in fields:
            out["instructions"] = fields.pop("instructions")
        if "output_modalities" in fields:
            out["modalities"] = _output_modalities(fields.pop("output_modalities"),
                                                   f"{path}.output_modalities")
        if "max_output_tokens" in fields:
            out["max_response_output_tokens"] = _max_tokens(fields.pop("max_output_tokens"))
        audio = _object(fields.pop("audio", None), f"{path}.audio")
        audio_in = _object(audio.pop("input", None), f"{path}.audio.input")
        audio_out = _object(audio.pop("output", None), f"{path}.audio.output")
        _no_more(audio, f"{path}.audio")
        _take_format(audio_in, f"{path}.audio.input", "input", out)
        if "transcription" in audio_in:
            out["input_audio_transcription"] = _transcription(
                audio_in.pop("transcription"), f"{path}.audio.input.transcription")
        if "turn_detection" in audio_in:
            out["turn_detection"] = _turn_detection(audio_in.pop("turn_detection"),
                                                    f"{path}.audio.input.turn_detection")
        _take_noise_reduction(audio_in, f"{path}.audio.input", "noise_reduction", out)
        _no_more(audio_in, f"{path}.audio.input")
        _take_format(audio_out, f"{path}.audio.output", "output", out)
        if audio_out.get("voice") is not None:
            out["voice"] = _voice(audio_out.pop("voice"), f"{path}.audio.output.voice")
        if audio_out.get("speed") is not None:
            out["speed"] = audio_out.pop("speed")
        _no_more(audio_out, f"{path}.audio.output")
        for name in ("input_sample_rate", "output_sample_rate", "temperature"):  # extensions
            if name in fields:
                out[name] = fields.pop(name)
        _no_more(fields, path)
        return out

    def _beta_session(self, fields: dict[str, Any]) -> dict[str, Any]:
        path, out = "session", {}
        self._model(fields, path)
        _tools(fields, path, out)
        for name in ("tracing", "client_secret"):
            _take(fields, path, name)
        _take_noise_reduction(fields, path, "input_audio_noise_reduction", out)
        _take(fields, path, "include", (None, []), NO_LOGPROBS)
        for name in ("instructions", "voice", "speed", "temperature", "input_audio_format",
                     "output_audio_format", "input_sample_rate", "output_sample_rate",
                     "truncation"):
            if fields.get(name) is not None:
                out[name] = fields.pop(name)
        if fields.get("modalities") is not None:
            out["modalities"] = _output_modalities(fields.pop("modalities"),
                                                   f"{path}.modalities")
        if fields.get("max_response_output_tokens") is not None:
            out["max_response_output_tokens"] = _max_tokens(
                fields.pop("max_response_output_tokens"))
        if "input_audio_transcription" in fields:
            out["input_audio_transcription"] = _transcription(
                fields.pop("input_audio_transcription"), f"{path}.input_audio_transcription")
        if "turn_detection" in fields:
            out["turn_detection"] = _turn_detection(fields.pop("turn_detection"),
                                                    f"{path}.turn_detection")
        _no_more(fields, path)
        return out

    def _ga_transcription_session(self, fields: dict[str, Any]) -> dict[str, Any]:
        """GA ``{"type": "transcription", "audio": {"input": {...}}, "include"}``."""
        path, out = "session", {"type": "transcription"}
        _take(fields, path, "include", (None, []), NO_LOGPROBS)
        audio = _object(fields.pop("audio", None), f"{path}.audio")
        audio_in = _object(audio.pop("input", None), f"{path}.audio.input")
        _no_more(audio, f"{path}.audio")
        _take_format(audio_in, f"{path}.audio.input", "input", out)
        self._transcription_input(audio_in, f"{path}.audio.input", "transcription", out)
        _take_noise_reduction(audio_in, f"{path}.audio.input", "noise_reduction", out)
        _no_more(audio_in, f"{path}.audio.input")
        _no_more(fields, path)
        return out

    def _beta_transcription_session(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Beta ``transcription_session.update``'s session."""
        path, out = "session", {"type": "transcription"}
        _take(fields, path, "client_secret")
        _take_noise_reduction(fields, path, "input_audio_noise_reduction", out)
        _take(fields, path, "include", (None, []), NO_LOGPROBS)
        _take(fields, path, "modalities", (None, ["text"]), "must be ['text'] (a transcription "
              "session does not speak)")
        for name in ("input_audio_format", "input_sample_rate"):  # the rate: an extension
            if fields.get(name) is not None:
                out[name] = fields.pop(name)
        self._transcription_input(fields, path, "input_audio_transcription", out)
        _no_more(fields, path)
        return out

    @staticmethod
    def _transcription_input(fields: dict[str, Any], path: str, name: str,
                             out: dict[str, Any]) -> None:
        if name in fields:
            out["input_audio_transcription"] = _transcription(fields.pop(name),
                                                              f"{path}.{name}")
        if "turn_detection" in fields:
            out["turn_detection"] = _turn_detection(fields.pop("turn_detection"),
                                                    f"{path}.turn_detection",
                                                    transcription=True)

    # --- response.create -----------------------------------------------------------------

    def response(self, fields: dict[str, Any]) -> dict[str, Any]:
        path, out = "response", {}
        _tools(fields, path, out, mcp=False)
        _take(fields, path, "conversation", (None, "auto"),
              "must be 'auto': out-of-band responses are not supported")
        _take(fields, path, "input", (None,), "is not supported: add items with "
              "conversation.item.create, then response.create")
        for name in ("prompt", "reasoning"):
            _take(fields, path, name)
        for name in ("instructions", "metadata", "temperature"):
            if fields.get(name) is not None:
                out[name] = fields.pop(name)
        modalities = fields.pop("output_modalities" if self.dialect == "ga" else "modalities",
                                None)
        if modalities is not None:
            out["modalities"] = _output_modalities(modalities, f"{path}.modalities")
        tokens = fields.pop("max_output_tokens" if self.dialect == "ga"
                            else "max_response_output_tokens", None)
        if tokens is not None:
            out["max_response_output_tokens"] = _max_tokens(tokens)
        if self.dialect == "ga":
            audio = _object(fields.pop("audio", None), f"{path}.audio")
            audio_out = _object(audio.pop("output", None), f"{path}.audio.output")
            _no_more(audio, f"{path}.audio")
            if audio_out.get("voice") is not None:
                out["voice"] = _voice(audio_out.pop("voice"), f"{path}.audio.output.voice")
            _take(audio_out, f"{path}.audio.output", "format", (None,),
                  "is set per session (session.update)")
            _no_more(audio_out, f"{path}.audio.output")
        else:
            if fields.get("voice") is not None:
                out["voice"] = fields.pop("voice")
            _take(fields, path, "output_audio_format", (None,),
                  "is set per session (session.update)")
        _no_more(fields, path)
        return out

    # --- conversation.item.create --------------------------------------------------------

    def item(self, fields: dict[str, Any]) -> dict[str, Any]:
        path = "item"
        kind = fields.get("type", "message")
        if kind in ("function_call", "function_call_output", "mcp_approval_response"):
            for name in ("object", "status"):
                fields.pop(name, None)
            return fields
        if kind != "message":
            raise _unsupported(f"{path}.type", f"{kind!r} is not supported: messages, "
                               "function_call, function_call_output and "
                               "mcp_approval_response items are")
        fields["type"] = "message"
        if fields.get("role") == "system":
            raise _unsupported(f"{path}.role", "'system' is not supported: set the "
                               "session's instructions with session.update")
        content = fields.get("content")
        if isinstance(content, list):
            fields["content"] = [self._content(part, f"{path}.content[{i}]")
                                 for i, part in enumerate(content)]
        for name in ("object", "status"):
            fields.pop(name, None)
        return fields

    @staticmethod
    def _content(part: Any, path: str) -> dict[str, Any]:
        fields = _object(part, path)
        kind = fields.get("type")
        if kind in ("input_audio", "audio", "output_audio"):
            raise _unsupported(f"{path}.type", "audio in items is not supported: send audio "
                               "with input_audio_buffer.append")
        if kind not in ("input_text", "text", "output_text"):
            raise _unsupported(f"{path}.type", f"{kind!r} is not supported: only text")
        fields.pop("id", None)
        return fields
