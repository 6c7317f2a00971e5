"""What a reply will be, from the session's configuration and a ``response.create``'s
options: the prompt (history, memory, tools: the session's and its MCP servers'), the
sampling, the voice and the audio format, as a :class:`~.plan.ReplyPlan`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from orchestrator.realtime.audio import format_rate
from orchestrator.realtime.mcp import McpServers
from orchestrator.realtime.ports import VoicePorts
from orchestrator.realtime.protocol.client_events import ResponseOptions
from orchestrator.realtime.protocol.session_types import SessionConfig
from orchestrator.realtime.reply.plan import Pacing, ReplyPlan
from orchestrator.realtime.reply.stored import PromptContext, prompt_messages
from orchestrator.realtime.reply.tools import prompt_with_tools


@dataclasses.dataclass
class ReplyPlanner:
    """The responder's planning half: it reads the session's configuration when a reply
    starts, so a ``session.update`` applies from the next reply on."""

    ports: VoicePorts
    config: Callable[[], SessionConfig]
    prompt_context: PromptContext
    mcp: McpServers
    pacing: Pacing = Pacing()
    llm_version: str = ""
    """The LLM version this connection pinned (``model=llm:N``); empty: the promoted."""

    def voice_languages(self, voice: str | None) -> frozenset[str] | None:
        catalogue = self.ports.catalogue
        return catalogue.voice_languages(voice) if catalogue is not None else None

    def modalities(self, options: ResponseOptions | None) -> list[Any]:
        wanted = (options.modalities if options is not None else None) or \
            self.config().modalities
        return ["text", "audio"] if "audio" in wanted and self.ports.tts is not None \
            else ["text"]

    async def plan(self, options: ResponseOptions | None, response_id: str, item_id: str,
                   end_of_speech: float | None, user_text: str | None, *,
                   audio: bool, context: PromptContext | None = None) -> ReplyPlan:
        """The plan of one reply; ``context``: another history cursor (a prefill's copy,
        which a prompt that is never sent must not move)."""
        config, ports = self.config(), self.ports
        options = options or ResponseOptions()
        max_tokens = options.max_response_output_tokens or config.max_response_output_tokens
        messages = await prompt_messages(ports, context or self.prompt_context,
                                         instructions=options.instructions or config.instructions,
                                         user_text=user_text, truncation=config.truncation,
                                         output_tokens=max_tokens)
        params = ports.prompt.sampling(
            max_tokens=max_tokens,
            temperature=config.temperature if options.temperature is None
            else options.temperature)
        if self.llm_version:
            params = dataclasses.replace(params, version=self.llm_version)
        voice = options.voice or config.voice
        tools = config.tools if options.tools is None else options.tools
        choice = config.tool_choice if options.tool_choice is None else options.tool_choice
        mcp_names: frozenset[str] = frozenset()
        if self.mcp.servers:
            await self.mcp.ready()
            offered = self.mcp.function_tools({tool.name for tool in tools})
            tools, mcp_names = [*tools, *offered], frozenset(t.name for t in offered)
        prompt, parser = prompt_with_tools(ports.llm, messages, tools, choice,
                                           params.version or self.llm_version)
        return ReplyPlan(response_id=response_id, item_id=item_id, messages=messages,
                         params=params, audio=audio, voice=voice, speed=config.speed,
                         prompt=prompt, tool_parser=parser, mcp_tools=mcp_names,
                         voice_languages=self.voice_languages(voice),
                         output_rate=format_rate(config.output_audio_format,
                                                 config.output_sample_rate),
                         output_format=config.output_audio_format, end_of_speech=end_of_speech,
                         pacing=self.pacing)
