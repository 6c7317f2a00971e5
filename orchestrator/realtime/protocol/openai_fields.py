"""OpenAI's session and response fields, GA or beta, into the engine's: each helper takes
what it understands out of a client's object and refuses, naming the field as the client
sent it (``session.audio.input.format.rate``), a value this server does not honour; none
is dropped silently. :class:`.openai.ClientTranslator` puts them together."""

from __future__ import annotations

import re
from typing import Any, get_args

import msgspec

from orchestrator.errors import InvalidRequest
from orchestrator.realtime.protocol.client_events import invalid_event
from orchestrator.realtime.protocol.session_types import McpTool, SampleRate

MAX_OUTPUT_TOKENS = 4096  # what "inf" means here (the engine's ceiling)
GA_FORMATS = {"audio/pcm": "pcm16", "audio/pcmu": "g711_ulaw", "audio/pcma": "g711_alaw"}
IDLE_TIMEOUT_MS = (5000, 30000)  # OpenAI's range for turn_detection.idle_timeout_ms
MISSING_FIELD = re.compile(r"missing required field `(\w+)`")


def unsupported(path: str, what: str = "is not supported by this server") -> InvalidRequest:
    return InvalidRequest(f"{path} {what}", param=path)


def take(fields: dict[str, Any], path: str, name: str, accepted: tuple[Any, ...] = (None,),
          what: str = "is not supported by this server") -> None:
    """Remove ``name``; a value other than the ``accepted`` ones is refused."""
    if name in fields and fields.pop(name) not in accepted:
        raise unsupported(f"{path}.{name}", what)


def no_more(fields: dict[str, Any], path: str) -> None:
    for name, value in fields.items():
        if value is not None:
            raise unsupported(f"{path}.{name}")


def as_object(value: Any, path: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest(f"{path} must be an object", param=path)
    return dict(value)


def take_tools(fields: dict[str, Any], path: str, out: dict[str, Any], *,
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
            raise unsupported(f"{where}.type", "'mcp' is set per session (session.update)")
        if tool.get("connector_id") is not None:
            raise unsupported(f"{where}.connector_id", "is not supported: name the MCP "
                               "server with server_url")
        tool = {k: v for k, v in tool.items() if v is not None and k != "connector_id"}
        try:
            servers.append(msgspec.convert(tool, McpTool))
        except msgspec.ValidationError as exc:
            problem, missing = invalid_event(exc), MISSING_FIELD.search(str(exc))
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


def output_token_limit(value: Any) -> Any:
    return MAX_OUTPUT_TOKENS if value == "inf" else value


def engine_modalities(value: Any, path: str) -> list[str]:
    """OpenAI's ``["audio"]`` is a spoken reply with its transcript: the engine's
    ``["text", "audio"]``."""
    if not isinstance(value, list) or not value or \
            not all(v in ("text", "audio") for v in value):
        raise InvalidRequest(f"{path} must be ['audio'] or ['text']", param=path)
    return ["text", "audio"] if "audio" in value else ["text"]


def turn_detection_fields(value: Any, path: str, *, transcription: bool = False) -> Any:
    if value is None:
        return None
    fields = as_object(value, path)
    idle = fields.get("idle_timeout_ms")
    if idle is not None:
        low, high = IDLE_TIMEOUT_MS
        if transcription:
            raise unsupported(f"{path}.idle_timeout_ms", "is not supported in a transcription "
                               "session: it creates a response, and there is none")
        if fields.get("type") != "server_vad":
            raise unsupported(f"{path}.idle_timeout_ms", "is for server_vad only")
        if not isinstance(idle, int) or isinstance(idle, bool) or not low <= idle <= high:
            raise InvalidRequest(f"{path}.idle_timeout_ms must be an integer from {low} to "
                                 f"{high} (milliseconds)", param=f"{path}.idle_timeout_ms")
    # null fields mean "the default": leave them out
    return {k: v for k, v in fields.items() if v is not None}


def transcription_fields(value: Any, path: str) -> dict[str, Any]:
    fields = {k: v for k, v in as_object(value, path).items() if v is not None}
    return fields


def ga_format(value: Any, path: str) -> tuple[str, int | None]:
    fields = as_object(value, path)
    kind = fields.pop("type", "audio/pcm")
    if not isinstance(kind, str) or kind not in GA_FORMATS:
        raise InvalidRequest(f"{path}.type must be one of {sorted(GA_FORMATS)}",
                             param=f"{path}.type")
    rate = fields.pop("rate", None)
    if kind != "audio/pcm" and rate not in (None, 8000):
        raise unsupported(f"{path}.rate", "must be 8000 for G.711")
    if kind == "audio/pcm" and rate is not None and rate not in get_args(SampleRate):
        raise unsupported(f"{path}.rate", "must be 24000 (or 16000)")
    no_more(fields, path)
    return GA_FORMATS[kind], rate if kind == "audio/pcm" else None


def take_format(fields: dict[str, Any], path: str, direction: str,
                 out: dict[str, Any]) -> None:
    """A GA ``format`` of ``audio.input`` / ``audio.output`` into the engine's fields."""
    if fields.get("format") is None:
        return
    fmt, rate = ga_format(fields.pop("format"), f"{path}.format")
    out[f"{direction}_audio_format"] = fmt
    if rate:
        out[f"{direction}_sample_rate"] = rate


NOISE_REDUCTION_TYPES = ("near_field", "far_field")


def take_noise_reduction(fields: dict[str, Any], path: str, name: str,
                          out: dict[str, Any]) -> None:
    """``{"type": "near_field" | "far_field"}`` or ``null`` (off) into the engine's
    ``noise_reduction``; another type is refused naming the field as the client sent it."""
    if name not in fields:
        return
    value = fields.pop(name)
    if value is None:
        out["noise_reduction"] = None
        return
    setting = as_object(value, f"{path}.{name}")
    kind = setting.pop("type", None)
    if kind not in NOISE_REDUCTION_TYPES:
        raise InvalidRequest(f"{path}.{name}.type must be 'near_field' or 'far_field'",
                             param=f"{path}.{name}.type")
    no_more(setting, f"{path}.{name}")
    out["noise_reduction"] = {"type": kind}


def voice_id(value: Any, path: str) -> Any:
    if isinstance(value, dict):
        return value.get("id")
    return value
