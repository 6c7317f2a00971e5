"""The OpenAI chat-completion fields this server does not honour, and why: the one
place their refusals are worded. Run on the raw JSON body before it is decoded
(``orchestrator.bodies``), so the 400 names the field and the reason instead of a
schema mismatch; the request schema accepts only each field's no-op value."""

from __future__ import annotations

from typing import Any

from orchestrator.errors import InvalidRequest

USE_TOOLS = "the legacy function-calling fields are not offered: use tools and tool_choice"
SPEECH_ELSEWHERE = "chat completions reply in text; speech is /v1/audio/speech or /v1/realtime"
NO_LOGPROBS = "log probabilities are not returned by the llm model"
USE_REPETITION = "use repetition_penalty (an extension) instead"
NOT_STORED = "completions are not stored (sessions store conversations)"

# field -> (values that mean "not used", why another value is refused)
REFUSED: dict[str, tuple[tuple[Any, ...], str]] = {
    "functions": ((None, []), USE_TOOLS),
    "function_call": ((None, "none", "auto"), USE_TOOLS),
    "logprobs": ((None, False), NO_LOGPROBS),
    "top_logprobs": ((None, 0), NO_LOGPROBS),
    "logit_bias": ((None, {}), "logit bias is not supported by the llm model"),
    "presence_penalty": ((None, 0), USE_REPETITION),
    "frequency_penalty": ((None, 0), USE_REPETITION),
    "modalities": ((None, ["text"]), SPEECH_ELSEWHERE),
    "audio": ((None,), SPEECH_ELSEWHERE),
    "prediction": ((None,), "predicted outputs are not supported"),
    "reasoning_effort": ((None,), "the served LLM is not a reasoning model"),
    "verbosity": ((None, "medium"), "not supported by the served LLM"),
    "web_search_options": ((None,), "web search is not offered"),
    "service_tier": ((None, "auto", "default"), "there is one service tier"),
    "store": ((None, False), NOT_STORED),
    "metadata": ((None, {}), NOT_STORED + ", so metadata has nowhere to go"),
}
MESSAGE_FIELDS: dict[str, str] = {
    "function_call": USE_TOOLS,
    "name": "the chat template has no participant names", "audio": SPEECH_ELSEWHERE,
    "refusal": "refusals are the model's own output, not an input",
}


def refuse_unsupported(body: Any) -> None:
    """A 400 naming the first field given a value this server does not honour (``body``:
    the decoded JSON; anything else is left to the schema)."""
    if not isinstance(body, dict):
        return
    for name, (inert, why) in REFUSED.items():
        if name in body and body[name] not in inert:
            raise InvalidRequest(f"{name}: {why}", param=name)
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") not in (None, "text"):
        raise InvalidRequest(f"response_format {response_format.get('type')!r} is not "
                             "supported: the llm model has no constrained decoding",
                             param="response_format.type")
    tools = body.get("tools")
    for i, tool in enumerate(tools if isinstance(tools, list) else []):
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and function.get("strict") not in (None, False):
            raise InvalidRequest("strict function schemas are not enforced: the llm model has "
                                 "no constrained decoding", param=f"tools[{i}].function.strict")
    messages = body.get("messages")
    for i, message in enumerate(messages if isinstance(messages, list) else []):
        if not isinstance(message, dict):
            continue
        if message.get("role") == "function":
            raise InvalidRequest(f"messages[{i}]: {USE_TOOLS}", param=f"messages[{i}].role")
        for field, why in MESSAGE_FIELDS.items():
            if message.get(field) is not None:
                raise InvalidRequest(f"messages[{i}].{field}: {why}",
                                     param=f"messages[{i}].{field}")
