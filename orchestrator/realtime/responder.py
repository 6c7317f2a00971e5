"""The reply stage of a realtime session: a turn or ``response.create`` in, a reply's
events out, its turn stored.

``respond``: build the prompt, run a :class:`~.reply.stages.Reply`, store what was
actually delivered with its stage timings, write memory, emit ``response.done``. The
stage owns the reply in flight and whether a response is pending (``reserve`` /
``pending``): cancelling, barge-in and truncation of the reply in flight go through it.
Failures become ``error`` events for this connection only.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

import msgspec

from orchestrator.errors import Conflict, InvalidRequest, websocket_error_event
from orchestrator.realtime.audio import format_rate
from orchestrator.realtime.items import ConversationItems
from orchestrator.realtime.mcp import McpServers
from orchestrator.realtime.planner import ReplyPlanner
from orchestrator.realtime.ports import ReplySink, VoicePorts
from orchestrator.realtime.protocol.client_events import ResponseOptions
from orchestrator.realtime.protocol.item_types import assistant_item
from orchestrator.realtime.protocol.outbound import OutboundQueue, emit
from orchestrator.realtime.protocol.server_events import (
    ItemTruncated,
    ResponseCreated,
    ResponseDone,
    ResponseInfo,
)
from orchestrator.realtime.protocol.session_types import FunctionTool, SessionConfig, new_id
from orchestrator.realtime.reply.filler import FillerVoice, last_user_text
from orchestrator.realtime.reply.mcp_calls import McpCalls, ran
from orchestrator.realtime.reply.plan import Pacing, ReplyOutcome
from orchestrator.realtime.reply.prefill import Prefill
from orchestrator.realtime.reply.stages import Reply
from orchestrator.realtime.reply.stored import (
    PromptContext,
    assistant_turn_row,
    item_status,
    remember_later,
    tool_call_rows,
)
from orchestrator.realtime.reply.tools import check_tools
from orchestrator.realtime.timings import Timings
from orchestrator.realtime.transcription import check_response
from orchestrator.realtime.turns.speculation import HeldSink
from orchestrator.telemetry.metrics import observe_reply
from orchestrator.telemetry.tracing import trace_reply, traced
from storage.conversations import ConversationStore, TurnRecord

log = logging.getLogger(__name__)
MCP_FOLLOW_UPS = 4
"""Replies in a row that may run MCP tools and be answered again."""


class Responder:
    def __init__(self, *, session_id: str, ports: VoicePorts, store: ConversationStore,
                 outbound: OutboundQueue, items: ConversationItems,
                 config: Callable[[], SessionConfig], prompt_context: PromptContext,
                 pacing: Pacing = Pacing(), llm_version: str = "",
                 reply_sent: Callable[[], None] | None = None,
                 mcp: McpServers | None = None, mcp_filler_s: float = 0.0) -> None:
        self.session_id = session_id
        self.ports, self.store, self.outbound, self.items = ports, store, outbound, items
        self.config = config
        self.reply_sent = reply_sent
        """Runs once a reply's ``response.done`` left the socket: after the last of its
        audio (the idle timeout counts from there)."""
        self.mcp = mcp or McpServers()
        """The session's MCP servers: their tools are offered, their calls run here."""
        self.planner = ReplyPlanner(ports, config, prompt_context, self.mcp, pacing,
                                    llm_version)
        self.mcp_calls = McpCalls(session_id=session_id, store=store, keep=items.keep,
                                  tts=ports.tts, filler_s=mcp_filler_s)
        """The MCP calls in flight (a cancel stops them), their filler, their storing."""
        self.reply: Reply | None = None
        self.quiet = asyncio.Event()
        """Set while no response is queued or running (``pending`` is its inverse): memory
        writes wait for it, so the embedder does not take the CPU a reply's first words
        need (``remember_later``)."""
        self.quiet.set()
        self._truncate_at: dict[str, float] = {}
        self._undelivered: dict[str, str] = {}  # response id -> why its tail was dropped
        self._prefill = Prefill(ports.llm, items.spawn)

    @property
    def llm_version(self) -> str:
        return self.planner.llm_version

    # --- who may start a reply -------------------------------------------------------------

    @property
    def pending(self) -> bool:
        """A response is queued or running."""
        return not self.quiet.is_set()

    def _set_pending(self, pending: bool) -> None:
        if pending:
            self.quiet.clear()
        else:
            self.quiet.set()

    def accept(self, options: ResponseOptions) -> None:
        """``response.create``: its options are checked now, then the response is
        reserved; the reply runs later on the chain."""
        config = self.config()
        check_response(config)
        if options.voice and self.ports.catalogue is not None:
            self.ports.catalogue.check_voice(options.voice, param="response.voice")
        if options.modalities and "audio" in options.modalities and self.ports.tts is None:
            raise InvalidRequest("audio replies are unavailable: text-to-speech is disabled",
                                 param="response.modalities")
        self.check_tools(config.tools if options.tools is None else options.tools,
                         options.tool_choice, "response")
        self.reserve()

    def reserve(self) -> None:
        """One response at a time (``response.create``, the idle timeout's nudge)."""
        if self.pending:
            raise Conflict("a response is already in progress; cancel it first")
        self._set_pending(True)

    def check_tools(self, tools: list[FunctionTool] | None, choice: Any, path: str,
                    mcp: bool | None = None) -> None:
        """Tools the served llm version cannot call are refused when they are set.
        ``mcp``: MCP servers are set (their tools, listed later, may be ``required``)."""
        if (bool(self.mcp.servers) if mcp is None else mcp) and choice == "required":
            choice = "auto"
        check_tools(self.ports.llm, self.llm_version, tools, choice, path)

    # --- the reply -------------------------------------------------------------------------

    def prefill(self, user_text: str) -> None:
        """The user is still speaking; ``user_text`` is what they said so far (a partial
        transcript). Read the prompt the reply would have into the LLM's prefix cache now,
        so that when the turn ends only its last words are new (:mod:`.reply.prefill`)."""
        said = user_text.strip()
        if self.pending or self.ports.llm is None or not said:
            return
        # A copy of the history cursor: a prompt that is never sent must not move it.
        context = dataclasses.replace(self.planner.prompt_context, cursor=dataclasses.replace(
            self.planner.prompt_context.cursor))
        self._prefill.start(lambda: self.planner.plan(None, "", "", None, said, audio=False,
                                               context=context))

    async def respond(self, options: ResponseOptions | None, *,
                      end_of_speech: float | None = None, stt_ms: float | None = None,
                      stt_tail_ms: float | None = None,
                      turn_detection_ms: Callable[[], float | None] | None = None,
                      out: ReplySink | None = None,
                      user_text: str | None = None,
                      user_stored: asyncio.Future[TurnRecord] | None = None,
                      prompt_read: asyncio.Event | None = None, follow_ups: int = 0) -> None:
        """Answer the conversation. From a user turn: ``user_text`` is the turn (stored
        concurrently: ``prompt_read`` lets it be stored once the history was read, and
        the reply is stored only after ``user_stored``); ``out`` may hold the events of a
        speculative turn. A reply that ran MCP tools is followed by one that reads their
        results (``follow_ups`` of them at most :data:`MCP_FOLLOW_UPS` in a row)."""
        ran_tools = False
        with traced("realtime.response") as span:
            out = out or self.outbound
            response_id, item_id = new_id("resp"), new_id("item")
            span.set_attribute("voicechat.response_id", response_id)
            self._set_pending(True)
            modalities = self.planner.modalities(options)
            metadata = options.metadata if options is not None else None
            await emit(out, ResponseCreated(response=ResponseInfo(
                id=response_id, item_id=item_id, modalities=modalities, metadata=metadata)))
            try:
                planning = time.perf_counter()
                try:
                    plan = await self.planner.plan(options, response_id, item_id, end_of_speech,
                                            user_text, audio="audio" in modalities)
                finally:
                    if prompt_read is not None:
                        prompt_read.set()
                prompt_ms = round((time.perf_counter() - planning) * 1000, 3)
                assert self.ports.llm is not None
                await self._prefill.settled()  # its cache entry is out of the pool till then
                self.reply = Reply(plan, self.ports.llm, self.ports.tts, out)
                outcome = await self.reply.run()
                if user_stored is not None:
                    await user_stored  # a speculative turn has ended by now
                await out.settled(response_id)  # what is stored is what the client got
                if (reason := self._undelivered.pop(response_id, None)) is not None:
                    outcome.status, outcome.cancel_reason = "cancelled", reason
                if isinstance(out, HeldSink):
                    outcome.timings = self.reply.timings(out.released_at)
                outcome.timings.stt_ms, outcome.timings.stt_tail_ms = stt_ms, stt_tail_ms
                outcome.timings.prompt_ms = prompt_ms
                if turn_detection_ms is not None:
                    outcome.timings.turn_detection_ms = turn_detection_ms()
                record = await self._store_reply(item_id, self.reply, outcome)
                ran_tools = await self._run_mcp(out, response_id, self.reply, outcome)
                if (reason := self._undelivered.pop(response_id, None)) is not None:
                    ran_tools = False  # cancelled while a call ran: no answer follows
                    outcome.status, outcome.cancel_reason = "cancelled", reason
            except Exception as exc:  # prompt, memory or storage failed: this reply only
                log.exception("reply failed")
                outcome = ReplyOutcome("failed", "", 0.0, Timings(), error=exc)
                record = None
            finally:
                self.reply = None
                self._set_pending(False)
            await self._done(out, response_id, item_id, outcome, record, modalities, metadata)
        if ran_tools and follow_ups < MCP_FOLLOW_UPS:
            await self.respond(_answering(options), out=out, follow_ups=follow_ups + 1)

    # --- MCP tools -------------------------------------------------------------------------

    async def _run_mcp(self, out: ReplySink, response_id: str, reply: Reply,
                       outcome: ReplyOutcome) -> bool:
        """Run (or ask approval for) the reply's MCP calls; True when one ran."""
        if not reply.mcp_calls or outcome.status != "completed":
            return False
        plan = reply.plan
        voice = FillerVoice(plan.voice, plan.speed, plan.output_rate, plan.output_format,
                            plan.voice_languages) if plan.audio else None
        items = await self.mcp_calls.run(
            lambda stopped: self.mcp.run_calls(reply.mcp_calls, out, response_id,
                                               reply.outputs, stopped=stopped),
            out, response_id, voice, last_user_text(plan.messages),
            reply.outputs + len(reply.mcp_calls))
        outcome.function_calls += items
        return ran(items)

    async def run_approved(self, request_id: str) -> None:
        """The client approved an MCP call: a response that runs it, then one that reads
        its result."""
        response_id, modalities = new_id("resp"), self.planner.modalities(None)
        self._set_pending(True)
        items: list[Any] = []
        try:
            await emit(self.outbound, ResponseCreated(response=ResponseInfo(
                id=response_id, modalities=modalities)))
            config = self.config()
            voice = FillerVoice(
                config.voice, config.speed,
                format_rate(config.output_audio_format, config.output_sample_rate),
                config.output_audio_format, self.planner.voice_languages(config.voice)) \
                if "audio" in modalities else None

            async def run(stopped: asyncio.Event) -> list[Any]:
                item = await self.mcp.run_approved(request_id, self.outbound, response_id,
                                                   stopped=stopped)
                return [item] if item is not None else []

            items = await self.mcp_calls.run(run, self.outbound, response_id, voice,
                                             await self.mcp_calls.said_last(), 1)
        finally:
            self._set_pending(False)
        cancelled = self._undelivered.pop(response_id, None)
        await emit(self.outbound, ResponseDone(response=ResponseInfo(
            id=response_id, status="cancelled" if cancelled else "completed",
            status_details={"type": "cancelled", "reason": cancelled} if cancelled else None,
            modalities=modalities, function_calls=items)), on_sent=self.reply_sent)
        if ran(items) and not cancelled:
            await self.respond(_answering(None), follow_ups=1)

    async def _store_reply(self, item_id: str, reply: Reply,
                           outcome: ReplyOutcome) -> TurnRecord | None:
        cut = self._truncate_at.pop(item_id, None)
        text = reply.delivered_text(cut)
        calls = reply.function_calls
        if not text and not calls:
            return None  # nothing reached the user: there is no assistant turn to keep
        interrupted = outcome.status != "completed" or cut is not None
        record = await self.store.add_turn(self.session_id, assistant_turn_row(
            text, outcome, interrupted=interrupted, tool_calls=tool_call_rows(calls)))
        if text:
            self.items.keep(record.id, assistant_item(
                item_id, text, reply.plan.audio, item_status(record)))
        for call in calls:
            self.items.keep(record.id, call)
        self.items.keep_delivered(item_id, record.id, reply)
        if (late_cut := self._truncate_at.pop(item_id, None)) is not None:
            record = await self.store.truncate_turn(record.id, reply.delivered_text(late_cut))
        remember_later(self.ports, [record], self.items.spawn, after=self.quiet.wait)
        return record

    async def _done(self, out: ReplySink, response_id: str, item_id: str,
                    outcome: ReplyOutcome, record: TurnRecord | None,
                    modalities: list[Any], metadata: dict[str, str] | None) -> None:
        status, details = outcome.reported_status()
        observe_reply("realtime", status, outcome.timings)
        trace_reply(status, outcome.timings)
        await emit(out, ResponseDone(response=ResponseInfo(
            id=response_id, status=status, status_details=details, item_id=item_id,
            text=record.text if record else outcome.text, audio_ms=round(outcome.audio_ms, 3),
            usage=outcome.usage(), timings=outcome.timings, modalities=modalities,
            metadata=metadata, function_calls=outcome.function_calls)), on_sent=self.reply_sent)
        if outcome.status == "failed" and outcome.error is not None:
            await emit(out, websocket_error_event(outcome.error))

    # --- cancellation and truncation -------------------------------------------------------

    @property
    def generating(self) -> str | None:
        """The item id of the reply in flight."""
        return self.reply.plan.item_id if self.reply is not None else None

    def _live_reply(self) -> Reply | None:
        """The reply in flight, unless it is speculative still (the client knows nothing
        of it, so nothing the client does can cancel it)."""
        reply = self.reply
        if reply is None or (isinstance(reply.outbound, HeldSink) and reply.outbound.holding):
            return None
        return reply

    @property
    def speaking(self) -> bool:
        """A spoken reply is in flight or still playing (speech now may be a backchannel
        or a barge-in)."""
        reply = self._live_reply()
        if reply is not None:
            return reply.plan.audio and self.ports.tts is not None
        return self.items.still_playing(time.perf_counter()) is not None

    async def cancel(self, reason: str) -> bool:
        """Cancel the reply in flight and drop its queued deltas at once. A reply generated
        in full whose events are still leaving (a transport that takes audio at playout
        pace) is cancelled too: what had not left is dropped."""
        reply = self._live_reply()
        if reply is None:
            # an approved MCP call runs in a response of its own, with no reply
            calling = self.mcp_calls.calling
            if calling is None or not self.mcp_calls.stop(calling):
                return False
            await self.outbound.drop_response(calling)  # its filler, if one is queued
            self._undelivered[calling] = reason
            return True
        if not reply.cancel(reason):
            calling = self.mcp_calls.stop(reply.plan.response_id)  # its calls end now
            if not await reply.outbound.drop_response(reply.plan.response_id) and not calling:
                return False
            self._undelivered[reply.plan.response_id] = reason
            return True
        await reply.outbound.drop_response(reply.plan.response_id)
        return True

    async def interrupt(self, speech_started: float) -> bool:
        """Barge-in: cancel the reply and keep, as its stored turn, what the user had
        heard when they began to speak at ``speech_started`` (clock time; the client
        plays the audio in real time from its first delta)."""
        reply = self._live_reply()
        if reply is None:
            # Fully sent but still playing: cut the stored turn to what was heard and
            # tell the client where (it stops playback there).
            playing = self.items.still_playing(speech_started)
            if playing is None:
                return False
            item_id, delivered = playing
            await emit(self.outbound, await self.items.cut(
                item_id, delivered, delivered.reply.playback.heard_ms(speech_started)))
            return True
        if reply.plan.audio:
            self._truncate_at.setdefault(reply.plan.item_id,
                                         reply.playback.heard_ms(speech_started))
        return await self.cancel("turn_detected")

    async def truncate(self, item_id: str, audio_end_ms: int) -> bool:
        """``conversation.item.truncate`` of the reply in flight; False when ``item_id``
        is not that reply (a stored one is the items' to cut)."""
        reply = self.reply
        if reply is None or reply.plan.item_id != item_id:
            return False
        if not reply.plan.audio:
            raise InvalidRequest(f"item {item_id!r} has no audio to truncate")
        clamped = min(float(audio_end_ms), reply.playback.sent_ms)
        self._truncate_at[item_id] = clamped
        await self.cancel("truncated")
        await emit(self.outbound, ItemTruncated(item_id=item_id, audio_end_ms=int(clamped)))
        return True



def _answering(options: ResponseOptions | None) -> ResponseOptions:
    """A response that reads MCP results: as the one that called, but free to answer in
    words (a ``required`` or named tool choice would only call again)."""
    return msgspec.structs.replace(options or ResponseOptions(), tool_choice="auto")
