"""A dependency probe of ``GET /api/health`` (features add theirs at start-up)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass
class HealthCheck:
    """A dependency probe: returns a detail string (or None) and raises when down."""

    name: str
    required: bool
    probe: Callable[[], Awaitable[str | None]]
