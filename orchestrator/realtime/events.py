"""Where ``orchestrator.bench`` finds the stage timings (the events live in
:mod:`orchestrator.realtime.protocol.server_events`; the timings in :mod:`.timings`)."""

from orchestrator.realtime.timings import Timings

__all__ = ["Timings"]
