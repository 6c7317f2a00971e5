"""Function calling's own pieces: the reply parser (streamed or whole), and the prompt the
served template renders (Qwen2.5's own template, from its GGUF) with tools, past calls,
tool results and a forced call's opening."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from orchestrator.chat.schemas import ChatMessageIn
from orchestrator.chat.tools import (
    ToolCallParser,
    ToolTemplate,
    opening_for,
    template_messages,
)

QWEN_TEMPLATE = (Path(__file__).parents[1] / "support" / "qwen25_chat_template.jinja"
                 ).read_text()
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
REPLY = ('Let me look.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}'
         '\n</tool_call>')


def _parse(parser: ToolCallParser, text: str, step: int) -> tuple[str, list]:
    content, calls = [], []
    for i in range(0, len(text), step):
        c, d = parser.feed(text[i:i + step])
        content.append(c)
        calls += d
    c, d = parser.finish()
    return "".join(content) + c, calls + d


@pytest.mark.parametrize("step", [1, 2, 5, 1000])
def test_calls_come_out_whole_however_the_reply_is_cut(step: int) -> None:
    content, calls = _parse(ToolCallParser({"get_weather"}), REPLY, step)
    assert content == "Let me look.\n"
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"})]
    assert calls[0].id.startswith("call_")


def test_what_is_not_a_call_of_an_offered_tool_stays_content() -> None:
    for block in ('{"name": "rm_rf", "arguments": {}}', "not json", '["a list"]'):
        text = f"<tool_call>{block}</tool_call> and <tool"
        content, calls = _parse(ToolCallParser({"get_weather"}), text, 3)
        assert calls == [] and content == text


def test_a_forced_call_is_completed_from_its_opening() -> None:
    opening = opening_for({"type": "function", "function": {"name": "get_weather"}})
    assert opening.endswith('"arguments": ')
    parser = ToolCallParser({"get_weather"}, opening)
    content, calls = _parse(parser, '{"city": "Seoul"}}\n', 4)  # cut by the stop sequence
    assert content == "" and json.loads(calls[0].arguments) == {"city": "Seoul"}
    required = ToolCallParser({"get_weather"}, opening_for("required"))
    _, calls = _parse(required, 'get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>', 7)
    assert calls[0].name == "get_weather"


def test_one_call_only_when_parallel_calls_are_off() -> None:
    parser = ToolCallParser({"a", "b"}, limit=1)
    text = '<tool_call>{"name": "a", "arguments": {}}</tool_call>' \
           '<tool_call>{"name": "b", "arguments": {}}</tool_call>'
    content, calls = _parse(parser, text, 6)
    assert [c.name for c in calls] == ["a"] and content == ""


def _template(tmp_path: Path, template: str) -> ToolTemplate | None:
    (tmp_path / "chat_template.jinja").write_text(template)
    (tmp_path / "generation.json").write_text(json.dumps({
        "eos_token_ids": [2], "bos_token": None, "eos_token": "<|im_end|>",
        "context_tokens": 32768, "vocab_size": 100}))
    return ToolTemplate.load(tmp_path)


def test_templates_without_tools_offer_none(tmp_path: Path) -> None:
    chatml = ("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
              "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    assert _template(tmp_path, chatml) is None
    assert _template(tmp_path, QWEN_TEMPLATE) is not None


def test_the_prompt_carries_tools_past_calls_and_results(tmp_path: Path) -> None:
    template = _template(tmp_path, QWEN_TEMPLATE)
    assert template is not None
    messages = msgspec.convert([
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"celsius": 21}'},
    ], list[ChatMessageIn])
    opening = opening_for("required")
    prompt = template.render(template_messages(messages), [WEATHER], opening)
    assert "<tools>\n" + json.dumps(WEATHER) + "\n</tools>" in prompt
    # The past call as the model writes calls, arguments as an object, not a string.
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n' \
           '</tool_call>' in prompt
    assert '<tool_response>\n{"celsius": 21}\n</tool_response>' in prompt
    assert prompt.endswith("<|im_start|>assistant\n" + opening)
    plain = template.render(template_messages(messages[:1]), None)
    assert "<tools>" not in plain and plain.endswith("<|im_start|>assistant\n")


@pytest.mark.parametrize("step", [1, 4, 1000])
def test_small_model_slips_are_still_calls(step: int) -> None:
    """Qwen2.5-Coder-0.5B, as measured: the call's JSON without its tags, and without its
    last brace; JSON that is no call stays content."""
    untagged = '{"name": "get_weather", "arguments": {"city": "Paris"}}'
    for text in (untagged, untagged[:-1], untagged + "\n<tool_call>"):
        content, calls = _parse(ToolCallParser({"get_weather"}), text, step)
        if text.endswith("<tool_call>"):
            assert calls == [] and content == text
        else:
            assert content == "" and json.loads(calls[0].arguments) == {"city": "Paris"}
    content, calls = _parse(ToolCallParser({"get_weather"}), '{"answer": 42} is JSON', step)
    assert calls == [] and content == '{"answer": 42} is JSON'
    mixed = '{"x": 1} then <tool_call>{"name": "get_weather", "arguments": {}}</tool_call>'
    content, calls = _parse(ToolCallParser({"get_weather"}), mixed, step)
    assert content == '{"x": 1} then ' and [c.name for c in calls] == ["get_weather"]
