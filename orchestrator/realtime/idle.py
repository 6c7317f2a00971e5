"""The idle timeout of ``server_vad`` (OpenAI's ``turn_detection.idle_timeout_ms``).

Once a reply has been sent (its ``response.done`` left the socket, after the last of its
audio), the clock starts; when the user says nothing for ``idle_timeout_ms`` the server
sends ``input_audio_buffer.timeout_triggered`` (the silent stretch of input audio, as
offsets in the audio written so far), commits it as an empty user item (not stored: no
words) and creates a response, in which the model prompts the user to go on.

It fires once per silence: the reply it creates does not start the clock again; speech,
or a client event that starts a turn or a response, resets it. While the user speaks, a
turn is in flight or a response is pending, it does not fire (that activity ends in a
reply, which starts the clock again).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from orchestrator.realtime.protocol.client_events import ResponseOptions
from orchestrator.realtime.protocol.outbound import OutboundQueue, emit
from orchestrator.realtime.protocol.server_events import AudioCommitted, TimeoutTriggered
from orchestrator.realtime.protocol.session_types import ServerVad, SessionConfig
from orchestrator.realtime.responder import Responder
from orchestrator.realtime.tasks import SessionTasks
from orchestrator.realtime.turns.taker import TurnTaker

log = logging.getLogger(__name__)
NUDGE = ("The user has said nothing for a while since your last reply. In one short "
         "sentence, check whether they are still there or invite them to go on.")


class IdleTimeout:
    def __init__(self, *, config: Callable[[], SessionConfig], taker: TurnTaker,
                 responder: Responder, tasks: SessionTasks, outbound: OutboundQueue) -> None:
        self.config, self.taker, self.responder = config, taker, responder
        self.tasks, self.outbound = tasks, outbound
        self._timer: asyncio.TimerHandle | None = None
        self._fired = False
        """The clock fired in this silence: its own reply does not start it again."""
        self._start_ms = 0

    def timeout_ms(self) -> int | None:
        config = self.config()
        vad = config.turn_detection
        if config.type != "realtime" or not isinstance(vad, ServerVad):
            return None
        return vad.idle_timeout_ms

    def reply_sent(self) -> None:
        """A reply's ``response.done`` left the socket (after its audio): start the clock."""
        timeout = self.timeout_ms()
        if self._fired or timeout is None or self.tasks.closing:
            return
        self._cancel()
        self._start_ms = self.taker.audio_ms
        self._timer = asyncio.get_running_loop().call_later(timeout / 1000, self._due)

    def reset(self) -> None:
        """Speech, or a client event that starts a turn or a response."""
        self._fired = False
        self._cancel()

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _due(self) -> None:
        self._timer = None
        if self.timeout_ms() is None or self.tasks.closing or self.taker.in_speech or \
                self.responder.pending or self.tasks.chain_busy:
            return  # not idle after all: what is going on ends in a reply or a reset
        self._fired = True
        self.responder.reserve()
        self.tasks.spawn(self._fire(), "idle timeout")

    async def _fire(self) -> None:
        # An item the client sees but that is not stored (like a backchannel's): no words.
        item_id, previous = self.taker.backchannel()
        await emit(self.outbound, TimeoutTriggered(
            audio_start_ms=self._start_ms, audio_end_ms=self.taker.audio_ms, item_id=item_id))
        await emit(self.outbound, AudioCommitted(item_id=item_id, previous_item_id=previous))
        instructions = f"{self.config().instructions}\n\n{NUDGE}".strip()
        options = ResponseOptions(instructions=instructions)
        self.tasks.enqueue(lambda: self.responder.respond(options), "idle response")
