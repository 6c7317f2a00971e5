"""Where ``orchestrator.bench`` finds the stage timings (the events live in
:mod:`orchestrator.realtime.protocol.events`; the timings in :mod:`.timings`)."""

from orchestrator.realtime.protocol.events import Timings

__all__ = ["Timings"]
