"""The conversation side of a realtime session: user turns and assistant replies.

``user_turn``: transcribe a committed turn, emit transcription events, store it, and
(server VAD) answer it. ``respond``: build the prompt, run a :class:`Reply`, store what
was actually delivered with its stage timings, write memory, emit ``response.done``.
Failures of a stage become ``error`` events for this connection only.

Every stored turn is also a conversation item of the connection (its id is what the
client saw), so ``conversation.item.retrieve`` / ``delete`` / ``truncate`` find it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import numpy as np

from orchestrator.chat.tools import (
    ToolCallParser,
    ToolTemplate,
    check_tool_choice,
    no_tool_calling,
    stored_template_messages,
    tool_prompt,
)
from orchestrator.errors import Conflict, InvalidRequest, NotFound, websocket_error_event
from orchestrator.realtime.audio import format_rate
from orchestrator.realtime.protocol.events import (
    FunctionCall,
    FunctionCallOutput,
    FunctionTool,
    Item,
    ItemCreate,
    ItemCreated,
    ItemDeleted,
    ItemRetrieved,
    ItemTruncated,
    NewFunctionCall,
    NewFunctionCallOutput,
    ResponseCreated,
    ResponseDone,
    ResponseInfo,
    ResponseOptions,
    SessionConfig,
    Timings,
    TranscriptionCompleted,
    TranscriptionDelta,
    TranscriptionFailed,
    TranscriptionUsage,
    Usage,
    assistant_item,
    new_id,
    user_audio_item,
)
from orchestrator.realtime.protocol.outbound import ConnectionClosed, OutboundQueue
from orchestrator.realtime.ports import ReplySink, VoicePorts
from orchestrator.realtime.reply.stages import Pacing, Reply, ReplyOutcome, ReplyPlan, spoken_text
from orchestrator.realtime.turns.speculation import HeldSink
from orchestrator.realtime.reply.stored import (
    PromptContext,
    assistant_turn_row,
    item_status,
    prompt_messages,
    remember_later,
    text_turn_row,
    tool_call_rows,
    user_turn_row,
)
from orchestrator.telemetry.metrics import observe_reply
from orchestrator.telemetry.tracing import trace_reply, traced
from storage.conversations import ConversationStore, TurnRecord

log = logging.getLogger(__name__)
KEEP_ITEMS = 32  # assistant items remembered for conversation.item.truncate
KEEP_CONVERSATION_ITEMS = 512  # items (any role) remembered for retrieve / delete


def _keep_latest(items: dict, key: str, value: object, keep: int = KEEP_ITEMS) -> None:
    """Set ``items[key]``, forgetting the oldest entries beyond ``keep``."""
    items[key] = value
    while len(items) > keep:
        items.pop(next(iter(items)))


def extension(sent: str, text: str) -> str:
    """What to append to ``sent`` (text already sent as deltas) to reach ``text``: the rest
    when ``text`` continues it word for word, else nothing."""
    if not sent:
        return text
    if text == sent or not text.startswith(sent):
        return ""
    rest = text[len(sent):]
    return rest if rest[:1].isspace() or not sent[-1:].isalnum() else ""


@dataclass(slots=True)
class _Delivered:
    turn_id: int
    reply: Reply


@dataclass(slots=True)
class _Entry:
    turn_id: int
    item: Item | FunctionCall | FunctionCallOutput


class Conversation:
    def __init__(self, *, user_id: str, session_id: str, ports: VoicePorts,
                 store: ConversationStore, outbound: OutboundQueue,
                 config: Callable[[], SessionConfig], history_turns: int,
                 memory_top_k: int, memory_min_score: float,
                 spawn: Callable[[Coroutine[Any, Any, None], str], asyncio.Task],
                 pacing: Pacing = Pacing(), llm_version: str = "") -> None:
        self.user_id, self.session_id = user_id, session_id
        self.llm_version = llm_version
        """The LLM version this connection pinned (``model=llm:N``); empty: the promoted."""
        self.pacing = pacing
        self.ports, self.store, self.outbound = ports, store, outbound
        self.config = config
        self.prompt_context = PromptContext(store, session_id, user_id, history_turns,
                                            memory_top_k, memory_min_score)
        self.spawn = spawn
        self.reply: Reply | None = None
        self.response_pending = False
        self._delivered: OrderedDict[str, _Delivered] = OrderedDict()
        self._sent_partial: dict[str, str] = {}  # item id -> transcript text sent as deltas
        self._drafts: dict[str, list[int]] = {}  # item id -> the latest partial's tokens
        self._truncate_at: dict[str, float] = {}
        self.items: OrderedDict[str, _Entry] = OrderedDict()
        """This connection's stored conversation items, oldest first."""
        self._calls: set[str] = set()
        """call_ids of function calls made in this connection (their outputs may follow)."""

    async def send(self, event: Any) -> None:
        await self._emit(self.outbound, event)

    async def send_error(self, exc: BaseException, event_id: str | None = None) -> None:
        await self.send(websocket_error_event(exc, event_id))

    # --- user turn -------------------------------------------------------------------------

    async def partial(self, item_id: str, audio: np.ndarray) -> None:
        """A partial transcript of the turn still being spoken: its stable words (all but
        the last, which the next audio may still change) go out as transcription deltas
        when they extend what was sent. Failures are quiet: the final transcript follows."""
        if self.ports.stt is None:
            return
        try:
            result = await self._transcribe(audio, self._drafts.get(item_id, []))
        except Exception as exc:
            log.info("partial transcription failed: %s", exc)
            return
        if len(result.segments) == 1:  # one window: its tokens can seed the final decode
            _keep_latest(self._drafts, item_id, list(result.segments[0].tokens))
        sent = self._sent_partial.get(item_id, "")
        delta = extension(sent, " ".join(result.text.split()[:-1]))
        if delta:
            _keep_latest(self._sent_partial, item_id, sent + delta)
            await self.send(TranscriptionDelta(item_id=item_id, delta=delta))

    def forget_partials(self, item_id: str) -> None:
        """Drop what partials of ``item_id`` sent and their draft (its audio was cleared)."""
        self._sent_partial.pop(item_id, None)
        self._drafts.pop(item_id, None)

    async def _transcribe(self, audio: np.ndarray, draft: list[int]) -> Any:
        """The session's transcription settings; ``draft``: the latest partial's tokens (a
        version that can check them in one decoder pass decodes only the rest; the
        transcript is the same either way)."""
        assert self.ports.stt is not None
        transcription = self.config().input_audio_transcription
        return await self.ports.stt.transcribe(audio, language=transcription.language,
                                               prompt=transcription.prompt, draft=draft)

    async def user_turn(self, item_id: str, audio: np.ndarray, end_of_speech: float,
                        answer: Callable[[], bool], *, held: HeldSink | None = None,
                        transcription: Any = None,
                        turn_detection_ms: Callable[[], float | None] | None = None) -> None:
        """Transcribe and store a committed turn; answer it when ``answer()`` still holds
        (no newer speech started meanwhile).

        ``held``: a speculative turn. Its events wait in the sink and its rows wait for
        ``held.confirmed``; until then cancelling the task leaves no trace.
        ``transcription``: the turn was already transcribed (a barge-in check)."""
        with traced("realtime.turn", {"voicechat.session_id": self.session_id,
                                      "voicechat.item_id": item_id,
                                      "voicechat.speculative": held is not None,
                                      "voicechat.audio_ms": round(len(audio) / 16, 3)}):
            out: ReplySink = held if held is not None else self.outbound
            config = self.config()
            assert self.ports.stt is not None
            started = time.perf_counter()
            try:
                with traced("stt"):
                    result = transcription or await self._transcribe(
                        audio, self._drafts.get(item_id, []))
            except Exception as exc:
                log.warning("transcription failed: %s", exc)
                error = websocket_error_event(exc)["error"]
                await self._confirmed(held)
                self.forget_partials(item_id)
                await self._emit(out, TranscriptionFailed(item_id=item_id, error=error))
                return
            stt_ms = round((time.perf_counter() - started) * 1000, 3)
            text = result.text.strip()
            if held is not None and held.on_transcript is not None:
                held.on_transcript(text, result.language)
            sent = self._sent_partial.get(item_id, "")
            # Deltas add up to the final transcript when the partials were right; when a
            # partial was revised, `completed` (always the whole final text) corrects it.
            if not sent or (delta := extension(sent, text)):
                await self._emit(out, TranscriptionDelta(item_id=item_id,
                                                         delta=text if not sent else delta))
            await self._emit(out, TranscriptionCompleted(
                item_id=item_id, transcript=text, language=result.language,
                usage=TranscriptionUsage(seconds=round(len(audio) / 16000, 3))))
            if not text:  # noise the VAD took for speech: nothing to store or answer
                await self._confirmed(held)
                self.forget_partials(item_id)
                return
            prompt_read = asyncio.Event()  # the reply read the history: the user row may follow

            async def store_user_turn() -> TurnRecord:
                await self._confirmed(held)
                await prompt_read.wait()
                self.forget_partials(item_id)
                record = await self.store.add_turn(self.session_id, user_turn_row(
                    text, result.language, stt_ms, len(audio)))
                self._keep_item(record.id, user_audio_item(item_id, text))
                remember_later(self.ports, [record], self.spawn)
                return record

            stored = asyncio.ensure_future(store_user_turn())
            try:
                if config.turn_detection is not None and config.turn_detection.create_response \
                        and answer():
                    await self.respond(None, end_of_speech=end_of_speech, stt_ms=stt_ms,
                                       turn_detection_ms=turn_detection_ms, out=out,
                                       user_text=text, user_stored=stored, prompt_read=prompt_read)
                prompt_read.set()
                await stored
            finally:
                stored.cancel()


    @staticmethod
    async def _confirmed(held: HeldSink | None) -> None:
        if held is not None:
            await held.confirmed.wait()

    async def _emit(self, out: ReplySink, event: Any) -> None:
        # A client that left gets nothing more; its turn is still finished and stored.
        with contextlib.suppress(ConnectionClosed):
            await out.put(event)

    async def transcribe_interruption(self, audio: np.ndarray) -> Any:
        """Transcribe speech heard during a reply, to tell a backchannel from a turn."""
        return await self._transcribe(audio, [])

    # --- assistant reply -------------------------------------------------------------------

    async def respond(self, options: ResponseOptions | None, *,
                      end_of_speech: float | None = None, stt_ms: float | None = None,
                      turn_detection_ms: Callable[[], float | None] | None = None,
                      out: ReplySink | None = None,
                      user_text: str | None = None,
                      user_stored: asyncio.Future[TurnRecord] | None = None,
                      prompt_read: asyncio.Event | None = None) -> None:
        """Answer the conversation. From a user turn: ``user_text`` is the turn (stored
        concurrently: ``prompt_read`` lets it be stored once the history was read, and
        the reply is stored only after ``user_stored``); ``out`` may hold the events of a
        speculative turn."""
        with traced("realtime.response") as span:
            out = out or self.outbound
            response_id, item_id = new_id("resp"), new_id("item")
            span.set_attribute("voicechat.response_id", response_id)
            self.response_pending = True
            modalities = self._modalities(options)
            metadata = options.metadata if options is not None else None
            await self._emit(out, ResponseCreated(response=ResponseInfo(
                id=response_id, item_id=item_id, modalities=modalities, metadata=metadata)))
            try:
                try:
                    plan = await self._plan(options, response_id, item_id, end_of_speech,
                                            user_text, audio="audio" in modalities)
                finally:
                    if prompt_read is not None:
                        prompt_read.set()
                assert self.ports.llm is not None
                self.reply = Reply(plan, self.ports.llm, self.ports.tts, out)
                outcome = await self.reply.run()
                if user_stored is not None:
                    await user_stored  # a speculative turn has ended by now
                if isinstance(out, HeldSink):
                    outcome.timings = self.reply.timings(out.released_at)
                outcome.timings.stt_ms = stt_ms
                if turn_detection_ms is not None:
                    outcome.timings.turn_detection_ms = turn_detection_ms()
                record = await self._store_reply(item_id, self.reply, outcome)
            except Exception as exc:  # prompt, memory or storage failed: this reply only
                log.exception("reply failed")
                outcome = ReplyOutcome("failed", "", 0.0, Timings(), error=exc)
                record = None
            finally:
                self.reply = None
                self.response_pending = False
            await self._done(out, response_id, item_id, outcome, record, modalities, metadata)


    def _modalities(self, options: ResponseOptions | None) -> list[Any]:
        wanted = (options.modalities if options is not None else None) or \
            self.config().modalities
        return ["text", "audio"] if "audio" in wanted and self.ports.tts is not None \
            else ["text"]

    async def _plan(self, options: ResponseOptions | None, response_id: str, item_id: str,
                    end_of_speech: float | None, user_text: str | None, *,
                    audio: bool) -> ReplyPlan:
        config, ports = self.config(), self.ports
        options = options or ResponseOptions()
        messages = await prompt_messages(ports, self.prompt_context,
                                         instructions=options.instructions or config.instructions,
                                         user_text=user_text)
        params = ports.prompt.sampling(
            max_tokens=options.max_response_output_tokens or config.max_response_output_tokens,
            temperature=config.temperature if options.temperature is None
            else options.temperature)
        if self.llm_version:
            params = dataclasses.replace(params, version=self.llm_version)
        voice = options.voice or config.voice
        tools = config.tools if options.tools is None else options.tools
        choice = config.tool_choice if options.tool_choice is None else options.tool_choice
        prompt, parser = self._tool_prompt(messages, tools, choice, params.version)
        return ReplyPlan(response_id=response_id, item_id=item_id, messages=messages,
                         params=params, audio=audio, voice=voice, speed=config.speed,
                         prompt=prompt, tool_parser=parser,
                         voice_languages=ports.catalogue.voice_languages(voice)
                         if ports.catalogue is not None else None,
                         output_rate=format_rate(config.output_audio_format,
                                                 config.output_sample_rate),
                         output_format=config.output_audio_format, end_of_speech=end_of_speech,
                         pacing=self.pacing)

    # --- function calling ------------------------------------------------------------------

    def _tool_template(self, version: str = "") -> ToolTemplate | None:
        find = getattr(self.ports.llm, "tool_template", None)
        return find(version or self.llm_version) if find is not None else None

    def check_tools(self, tools: list[FunctionTool] | None, choice: Any, path: str) -> None:
        """Tools the served llm version cannot call are refused when they are set."""
        if tools and self._tool_template() is None:
            raise no_tool_calling(f"{path}.tools")
        named = None if choice is None or isinstance(choice, str) else choice.name
        check_tool_choice({t.name for t in tools or []},
                          choice == "required" or named is not None, named,
                          f"{path}.tool_choice", f"{path}.tool_choice")

    def _tool_prompt(self, messages: list[Any], tools: list[FunctionTool], choice: Any,
                     version: str) -> tuple[str | None, ToolCallParser | None]:
        """The prompt rendered with the model's tool template and the parser of its reply,
        when the reply may call tools or the history holds calls; else (None, None)."""
        holds_calls = any(getattr(m, "tool_calls", ()) or getattr(m, "tool_call_id", None)
                          for m in messages)
        offered = [t.chat_shape() for t in tools] if tools and choice != "none" else None
        if not offered and not holds_calls:
            return None, None
        template = self._tool_template(version)
        if template is None:
            if offered:
                raise no_tool_calling("session.tools")
            return None, None  # past calls leave the prompt (the plain template has no place)
        chosen = choice if isinstance(choice, str) else {"function": {"name": choice.name}}
        return tool_prompt(template, stored_template_messages(messages), offered, chosen)

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
            self._keep_item(record.id, assistant_item(
                item_id, text, reply.plan.audio, item_status(record)))
        for call in calls:
            self._keep_item(record.id, call)
            self._calls.add(call.call_id)
        _keep_latest(self._delivered, item_id, _Delivered(record.id, reply))
        if (late_cut := self._truncate_at.pop(item_id, None)) is not None:
            record = await self.store.truncate_turn(record.id, reply.delivered_text(late_cut))
        remember_later(self.ports, [record], self.spawn)
        return record

    async def _done(self, out: ReplySink, response_id: str, item_id: str,
                    outcome: ReplyOutcome, record: TurnRecord | None,
                    modalities: list[Any], metadata: dict[str, str] | None) -> None:
        details, status = None, outcome.status
        if outcome.status == "completed" and outcome.incomplete_reason is not None:
            status = "incomplete"  # as OpenAI reports a reply cut by its token limit
            details = {"type": "incomplete", "reason": outcome.incomplete_reason}
        elif outcome.status == "cancelled":
            details = {"type": "cancelled", "reason": outcome.cancel_reason}
        elif outcome.status == "failed" and outcome.error is not None:
            details = {"type": "failed", "error": websocket_error_event(outcome.error)["error"]}
        usage = None
        if outcome.prompt_tokens is not None or outcome.completion_tokens is not None:
            p, c = outcome.prompt_tokens or 0, outcome.completion_tokens or 0
            usage = Usage(input_tokens=p, output_tokens=c, total_tokens=p + c)
        observe_reply("realtime", status, outcome.timings)
        trace_reply(status, outcome.timings)
        await self._emit(out, ResponseDone(response=ResponseInfo(
            id=response_id, status=status, status_details=details, item_id=item_id,
            text=record.text if record else outcome.text, audio_ms=round(outcome.audio_ms, 3),
            usage=usage, timings=outcome.timings, modalities=modalities, metadata=metadata,
            function_calls=outcome.function_calls)))
        if outcome.status == "failed" and outcome.error is not None:
            await self._emit(out, websocket_error_event(outcome.error))

    # --- conversation items ----------------------------------------------------------------

    def _keep_item(self, turn_id: int, item: Item) -> None:
        _keep_latest(self.items, item.id, _Entry(turn_id, item), KEEP_CONVERSATION_ITEMS)

    @property
    def last_item_id(self) -> str | None:
        return next(reversed(self.items), None)

    async def add_item(self, event: ItemCreate) -> None:
        """``conversation.item.create``: a text message, a function call or a call's output,
        stored as a turn; the reply waits for ``response.create``, as in OpenAI's API."""
        item = event.item
        if event.previous_item_id not in (None, self.last_item_id):
            raise InvalidRequest("items can only be appended: previous_item_id must be the "
                                 f"conversation's last item ({self.last_item_id!r}) or null",
                                 param="previous_item_id")
        item_id = item.id or new_id("item")
        if item_id in self.items:
            raise Conflict(f"item {item_id!r} already exists", param="item.id")
        previous = self.last_item_id
        stored: Item | FunctionCall | FunctionCallOutput
        if isinstance(item, NewFunctionCallOutput):
            if not await self._call_made(item.call_id):
                raise InvalidRequest(f"no function call {item.call_id!r} in this conversation "
                                     "to take an output", param="item.call_id")
            record = await self.store.add_turn(self.session_id, text_turn_row(
                "tool", item.output, tool_call_id=item.call_id))
            stored = FunctionCallOutput(id=item_id, call_id=item.call_id, output=item.output)
        elif isinstance(item, NewFunctionCall):
            stored = FunctionCall(id=item_id, call_id=item.call_id, name=item.name,
                                  arguments=item.arguments)
            record = await self.store.add_turn(self.session_id, text_turn_row(
                "assistant", "", tool_calls=tool_call_rows([stored])))
            self._calls.add(item.call_id)
        else:
            text = item.text()
            if not text.strip():
                raise InvalidRequest("the item has no text", param="item.content")
            record = await self.store.add_turn(self.session_id, text_turn_row(item.role, text))
            part = {"type": "input_text", "text": text} if item.role == "user" else \
                {"type": "text", "text": text}
            stored = Item(id=item_id, role=item.role, content=[part])
            remember_later(self.ports, [record], self.spawn)
        self._keep_item(record.id, stored)
        await self.send(ItemCreated(item=stored, previous_item_id=previous))

    async def _call_made(self, call_id: str) -> bool:
        """A call of this connection, or of the stored session (a continued one)."""
        if call_id in self._calls:
            return True
        turns = await self.store.recent_turns(self.session_id, KEEP_CONVERSATION_ITEMS)
        return any(c["call_id"] == call_id for t in turns for c in t.tool_calls or ())

    async def delete_item(self, item_id: str) -> None:
        """``conversation.item.delete``: the turn leaves the stored conversation (and the
        prompt of later replies, and memory)."""
        entry = self.items.get(item_id)
        if entry is None:
            raise NotFound(f"no item {item_id!r} in this conversation", param="item_id")
        if self.reply is not None and self.reply.plan.item_id == item_id:
            raise Conflict(f"item {item_id!r} is being generated; cancel the response first",
                           param="item_id")
        await self.store.delete_turn(self.session_id, entry.turn_id)
        # A reply's words and its calls are one stored turn: its items all go with it.
        gone = [key for key, e in self.items.items() if e.turn_id == entry.turn_id]
        for key in gone:
            del self.items[key]
            self._delivered.pop(key, None)
        forget = getattr(self.ports.memory, "forget", None)
        if forget is not None:
            self.spawn(forget([entry.turn_id]), "memory forget")
        for key in [item_id, *(k for k in gone if k != item_id)]:
            await self.send(ItemDeleted(item_id=key))

    async def retrieve_item(self, item_id: str) -> None:
        entry = self.items.get(item_id)
        if entry is None:
            raise NotFound(f"no item {item_id!r} in this conversation", param="item_id")
        turn = await self.store.get_turn(entry.turn_id)  # truncation may have cut it since
        item = entry.item
        if isinstance(item, Item) and item.role == "assistant":
            item = assistant_item(item.id, turn.text, item.content[0]["type"] == "audio",
                                  item_status(turn))
        await self.send(ItemRetrieved(item=item))

    # --- cancellation and truncation -------------------------------------------------------

    def _live_reply(self) -> Reply | None:
        """The reply in flight, unless it is speculative still (the client knows nothing
        of it, so nothing the client does can cancel it)."""
        reply = self.reply
        if reply is None or (isinstance(reply.outbound, HeldSink) and reply.outbound.holding):
            return None
        return reply

    def _still_playing(self, at: float) -> tuple[str, _Delivered] | None:
        """The last stored spoken reply, when the client is still playing it at ``at``
        (all its audio was sent, but it plays in real time)."""
        if not self._delivered:
            return None
        item_id, delivered = next(reversed(self._delivered.items()))
        reply = delivered.reply
        return (item_id, delivered) if reply.plan.audio and reply.playing_at(at) else None

    @property
    def speaking(self) -> bool:
        """A spoken reply is in flight or still playing (speech now may be a backchannel
        or a barge-in)."""
        reply = self._live_reply()
        if reply is not None:
            return reply.plan.audio and self.ports.tts is not None
        return self._still_playing(time.perf_counter()) is not None

    async def cancel(self, reason: str) -> bool:
        """Cancel the reply in flight and drop its queued deltas at once."""
        reply = self._live_reply()
        if reply is None or not reply.cancel(reason):
            return False
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
            playing = self._still_playing(speech_started)
            if playing is None:
                return False
            item_id, delivered = playing
            await self._cut_delivered(item_id, delivered,
                                      delivered.reply.heard_ms(speech_started))
            return True
        if reply.plan.audio:
            self._truncate_at.setdefault(reply.plan.item_id, reply.heard_ms(speech_started))
        return await self.cancel("turn_detected")

    async def truncate(self, item_id: str, audio_end_ms: int) -> None:
        reply = self.reply
        if reply is not None and reply.plan.item_id == item_id:
            if not reply.plan.audio:
                raise InvalidRequest(f"item {item_id!r} has no audio to truncate")
            clamped = min(float(audio_end_ms), reply.audio_sent_ms)
            self._truncate_at[item_id] = clamped
            await self.cancel("truncated")
            await self.send(ItemTruncated(item_id=item_id, audio_end_ms=int(clamped)))
        elif (delivered := self._delivered.get(item_id)) is not None:
            if not delivered.reply.plan.audio:
                raise InvalidRequest(f"item {item_id!r} has no audio to truncate")
            await self._cut_delivered(item_id, delivered, float(audio_end_ms))
        else:
            raise NotFound(f"no assistant item {item_id!r} in this connection")

    async def _cut_delivered(self, item_id: str, delivered: _Delivered,
                             audio_end_ms: float) -> None:
        """Cut a stored spoken reply to its first ``audio_end_ms`` (at most what was sent)
        and tell the client where."""
        clamped = min(audio_end_ms, delivered.reply.audio_sent_ms)
        await self.store.truncate_turn(delivered.turn_id,
                                       spoken_text(delivered.reply.spoken, clamped))
        await self.send(ItemTruncated(item_id=item_id, audio_end_ms=int(clamped)))
