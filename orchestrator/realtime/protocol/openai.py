"""OpenAI's Realtime protocol for ``WS /v1/realtime``, over the engine of ``/ws``.

The engine speaks the events of :mod:`.client_events` and :mod:`.server_events` (OpenAI's
beta names with extensions).
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
from collections.abc import Mapping
from typing import Any, Literal

import msgspec

from orchestrator.errors import InvalidRequest
from orchestrator.realtime.protocol.client_events import ClientEvent, invalid_event
from orchestrator.realtime.protocol.openai_fields import (
    as_object,
    engine_modalities,
    no_more,
    output_token_limit,
    take,
    take_format,
    take_noise_reduction,
    take_tools,
    transcription_fields,
    turn_detection_fields,
    unsupported,
    voice_id,
)

log = logging.getLogger(__name__)
Dialect = Literal["ga", "beta"]
BETA_HEADER = "openai-beta"

NO_LOGPROBS = ("is not supported: the speech-to-text models served here (Whisper, "
               "Moonshine) do not return token log-probabilities")
_decoder = msgspec.json.Decoder()


def dialect_of(headers: Mapping[str, str]) -> Dialect:
    """``OpenAI-Beta: realtime=v1`` selects the beta protocol; anything else is GA."""
    value = headers.get(BETA_HEADER, "")
    return "beta" if "realtime=v1" in value.replace(" ", "").lower() else "ga"


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
                    as_object(raw.get("session"), "session"))
            elif kind == "session.update":
                raw["session"] = self.session(as_object(raw.get("session"), "session"))
            elif kind == "response.create":
                raw["response"] = self.response(as_object(raw.get("response"), "response"))
            elif kind == "conversation.item.create":
                raw["item"] = self.item(as_object(raw.get("item"), "item"))
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
            raise unsupported(f"{path}.model", f"is {self.model!r} for this connection: "
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
            raise unsupported(f"{path}.type", "must be 'realtime' or 'transcription'")
        if kind is not None:
            out["type"] = kind
        self._model(fields, path)
        take_tools(fields, path, out)
        for name in ("tracing", "prompt", "reasoning"):
            take(fields, path, name)
        take(fields, path, "include", (None, []), NO_LOGPROBS)
        if fields.get("truncation") is not None:
            out["truncation"] = fields.pop("truncation")
        if "instructions" in fields:
            out["instructions"] = fields.pop("instructions")
        if "output_modalities" in fields:
            out["modalities"] = engine_modalities(fields.pop("output_modalities"),
                                                   f"{path}.output_modalities")
        if "max_output_tokens" in fields:
            out["max_response_output_tokens"] = output_token_limit(fields.pop("max_output_tokens"))
        audio = as_object(fields.pop("audio", None), f"{path}.audio")
        audio_in = as_object(audio.pop("input", None), f"{path}.audio.input")
        audio_out = as_object(audio.pop("output", None), f"{path}.audio.output")
        no_more(audio, f"{path}.audio")
        take_format(audio_in, f"{path}.audio.input", "input", out)
        if "transcription" in audio_in:
            out["input_audio_transcription"] = transcription_fields(
                audio_in.pop("transcription"), f"{path}.audio.input.transcription")
        if "turn_detection" in audio_in:
            out["turn_detection"] = turn_detection_fields(audio_in.pop("turn_detection"),
                                                    f"{path}.audio.input.turn_detection")
        take_noise_reduction(audio_in, f"{path}.audio.input", "noise_reduction", out)
        no_more(audio_in, f"{path}.audio.input")
        take_format(audio_out, f"{path}.audio.output", "output", out)
        if audio_out.get("voice") is not None:
            out["voice"] = voice_id(audio_out.pop("voice"), f"{path}.audio.output.voice")
        if audio_out.get("speed") is not None:
            out["speed"] = audio_out.pop("speed")
        no_more(audio_out, f"{path}.audio.output")
        for name in ("input_sample_rate", "output_sample_rate", "temperature"):  # extensions
            if name in fields:
                out[name] = fields.pop(name)
        no_more(fields, path)
        return out

    def _beta_session(self, fields: dict[str, Any]) -> dict[str, Any]:
        path, out = "session", {}
        self._model(fields, path)
        take_tools(fields, path, out)
        for name in ("tracing", "client_secret"):
            take(fields, path, name)
        take_noise_reduction(fields, path, "input_audio_noise_reduction", out)
        take(fields, path, "include", (None, []), NO_LOGPROBS)
        for name in ("instructions", "voice", "speed", "temperature", "input_audio_format",
                     "output_audio_format", "input_sample_rate", "output_sample_rate",
                     "truncation"):
            if fields.get(name) is not None:
                out[name] = fields.pop(name)
        if fields.get("modalities") is not None:
            out["modalities"] = engine_modalities(fields.pop("modalities"),
                                                   f"{path}.modalities")
        if fields.get("max_response_output_tokens") is not None:
            out["max_response_output_tokens"] = output_token_limit(
                fields.pop("max_response_output_tokens"))
        if "input_audio_transcription" in fields:
            out["input_audio_transcription"] = transcription_fields(
                fields.pop("input_audio_transcription"), f"{path}.input_audio_transcription")
        if "turn_detection" in fields:
            out["turn_detection"] = turn_detection_fields(fields.pop("turn_detection"),
                                                    f"{path}.turn_detection")
        no_more(fields, path)
        return out

    def _ga_transcription_session(self, fields: dict[str, Any]) -> dict[str, Any]:
        """GA ``{"type": "transcription", "audio": {"input": {...}}, "include"}``."""
        path, out = "session", {"type": "transcription"}
        take(fields, path, "include", (None, []), NO_LOGPROBS)
        audio = as_object(fields.pop("audio", None), f"{path}.audio")
        audio_in = as_object(audio.pop("input", None), f"{path}.audio.input")
        no_more(audio, f"{path}.audio")
        take_format(audio_in, f"{path}.audio.input", "input", out)
        self._transcription_input(audio_in, f"{path}.audio.input", "transcription", out)
        take_noise_reduction(audio_in, f"{path}.audio.input", "noise_reduction", out)
        no_more(audio_in, f"{path}.audio.input")
        no_more(fields, path)
        return out

    def _beta_transcription_session(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Beta ``transcription_session.update``'s session."""
        path, out = "session", {"type": "transcription"}
        take(fields, path, "client_secret")
        take_noise_reduction(fields, path, "input_audio_noise_reduction", out)
        take(fields, path, "include", (None, []), NO_LOGPROBS)
        take(fields, path, "modalities", (None, ["text"]), "must be ['text'] (a transcription "
              "session does not speak)")
        for name in ("input_audio_format", "input_sample_rate"):  # the rate: an extension
            if fields.get(name) is not None:
                out[name] = fields.pop(name)
        self._transcription_input(fields, path, "input_audio_transcription", out)
        no_more(fields, path)
        return out

    @staticmethod
    def _transcription_input(fields: dict[str, Any], path: str, name: str,
                             out: dict[str, Any]) -> None:
        if name in fields:
            out["input_audio_transcription"] = transcription_fields(fields.pop(name),
                                                              f"{path}.{name}")
        if "turn_detection" in fields:
            out["turn_detection"] = turn_detection_fields(fields.pop("turn_detection"),
                                                    f"{path}.turn_detection",
                                                    transcription=True)

    # --- response.create -----------------------------------------------------------------

    def response(self, fields: dict[str, Any]) -> dict[str, Any]:
        path, out = "response", {}
        take_tools(fields, path, out, mcp=False)
        take(fields, path, "conversation", (None, "auto"),
              "must be 'auto': out-of-band responses are not supported")
        take(fields, path, "input", (None,), "is not supported: add items with "
              "conversation.item.create, then response.create")
        for name in ("prompt", "reasoning"):
            take(fields, path, name)
        for name in ("instructions", "metadata", "temperature"):
            if fields.get(name) is not None:
                out[name] = fields.pop(name)
        modalities = fields.pop("output_modalities" if self.dialect == "ga" else "modalities",
                                None)
        if modalities is not None:
            out["modalities"] = engine_modalities(modalities, f"{path}.modalities")
        tokens = fields.pop("max_output_tokens" if self.dialect == "ga"
                            else "max_response_output_tokens", None)
        if tokens is not None:
            out["max_response_output_tokens"] = output_token_limit(tokens)
        if self.dialect == "ga":
            audio = as_object(fields.pop("audio", None), f"{path}.audio")
            audio_out = as_object(audio.pop("output", None), f"{path}.audio.output")
            no_more(audio, f"{path}.audio")
            if audio_out.get("voice") is not None:
                out["voice"] = voice_id(audio_out.pop("voice"), f"{path}.audio.output.voice")
            take(audio_out, f"{path}.audio.output", "format", (None,),
                  "is set per session (session.update)")
            no_more(audio_out, f"{path}.audio.output")
        else:
            if fields.get("voice") is not None:
                out["voice"] = fields.pop("voice")
            take(fields, path, "output_audio_format", (None,),
                  "is set per session (session.update)")
        no_more(fields, path)
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
            raise unsupported(f"{path}.type", f"{kind!r} is not supported: messages, "
                               "function_call, function_call_output and "
                               "mcp_approval_response items are")
        fields["type"] = "message"
        if fields.get("role") == "system":
            raise unsupported(f"{path}.role", "'system' is not supported: set the "
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
        fields = as_object(part, path)
        kind = fields.get("type")
        if kind in ("input_audio", "audio", "output_audio"):
            raise unsupported(f"{path}.type", "audio in items is not supported: send audio "
                               "with input_audio_buffer.append")
        if kind not in ("input_text", "text", "output_text"):
            raise unsupported(f"{path}.type", f"{kind!r} is not supported: only text")
        fields.pop("id", None)
        return fields
