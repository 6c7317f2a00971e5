"""The GA conformance table (docs/realtime-conformance.md) is generated from the SDK's
event unions and the tests: it must be current, and every event must be either shown by
a test or explained as not served."""

from __future__ import annotations

import openai.types.realtime as ga

from scripts import realtime_conformance as conformance


def test_every_ga_event_is_shown_by_a_test_or_explained() -> None:
    shown = conformance.showing_tests()
    events = conformance.event_types(ga.RealtimeClientEvent) + \
        conformance.event_types(ga.RealtimeServerEvent)
    assert len(events) > 40  # the unions were read (the SDK nests them in Annotated)
    unexplained = [e for e in events if e not in shown and e not in conformance.NOT_SERVED]
    assert unexplained == []
    # An event explained as not served that a test names is served after all (or the
    # explanation is stale): either way the table would be wrong.
    assert [e for e in conformance.NOT_SERVED if e in shown] == []
    assert set(conformance.NOT_SERVED) <= set(events)


def test_the_table_is_current() -> None:
    assert conformance.TABLE.read_text() == conformance.render(), \
        "python -m scripts.realtime_conformance"
