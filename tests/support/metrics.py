"""Reading a ``/metrics`` page (Prometheus text format) in tests."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def sample(page: str, name: str, **labels: str) -> float:
    """The value of the sample ``name`` whose labels include ``labels``, summed over the
    rest (0 when absent: a counter that never moved is not exported)."""
    total = 0.0
    for family in text_string_to_metric_families(page):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total
