"""Bodies of the model administration API (also printed as JSON by ``voicechat models``)."""

from __future__ import annotations

from typing import Any

import msgspec


class Check(msgspec.Struct):
    """One validation step and what it found."""

    name: str
    passed: bool
    detail: str = ""


class ValidationReport(msgspec.Struct):
    model: str
    version: int
    ok: bool
    checks: list[Check]

    @property
    def failures(self) -> str:
        return "; ".join(f"{c.name}: {c.detail}" for c in self.checks if not c.passed)


class VersionOut(msgspec.Struct):
    version: int
    state: str
    """Triton's state of this version: READY, LOADING, UNAVAILABLE, ..."""
    reason: str = ""
    served: bool = False
    """Requests that name no version go here."""
    manifest_id: str | None = None
    created_at: str | None = None
    source: dict[str, Any] | None = None
    parity: list[dict[str, Any]] | None = None
    parity_passed: bool | None = None
    manifest_error: str | None = None


class ModelOut(msgspec.Struct):
    name: str
    served: int | None
    rollback_to: int | None
    versions: list[VersionOut]
    history: list[dict[str, Any]] = msgspec.field(default_factory=list)
    """Latest promotion events, newest last."""
    triton: str = "reachable"
    """Whether Triton answered; when not, ``state`` of every version is UNKNOWN."""
    profile: str = "cpu"
    """The repository's deployment profile (``profile.json``)."""


class ModelList(msgspec.Struct):
    data: list[ModelOut]


class GcResult(msgspec.Struct):
    model: str
    dry_run: bool
    removed: list[int]
    """Removed (or, in a dry run, to be removed)."""
    kept: list[int]
