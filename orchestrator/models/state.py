"""``<repository>/<model>/serving.json``: which version serves, and how it got there.

One file per serving profile: ``serving.json`` for the default profile,
``serving.<profile>.json`` for a named one (``SERVING_PROFILE``; the Korean profile,
profiles/ko.env, is ``ko``). Profiles share the repository's versions but not what serves,
so ``make run LANGUAGE=ko`` (Qwen, USE, Kokoro) and a plain ``make run`` (SmolLM2, MiniLM,
Piper) each serve their own versions, and a promotion under one leaves the other as it
was. ``scripts/export_default_models`` records each profile's picks; promotions (the
admin API, ``voicechat models``) write the profile of the process that makes them.

::

    {"served": 2, "extra": [3], "history": [1, 2],
     "events": [{"at": "...", "action": "promote", "version": 2, "previous": 1}, ...]}

``served`` receives requests that name no version; ``extra`` are versions loaded beside
it for pinned requests (``stt:3``); ``history`` is the stack of served versions (a
promotion pushes, a rollback pops). Triton ignores the file (not a version directory).
It is written atomically, so readers (the embedded Triton start-up, other orchestrator
processes watching it) never see half a file.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.serving_profile import SERVING_FILE, serving_file

__all__ = ["SERVING_FILE", "ServingState", "read_state", "serving_file", "startup_versions",
           "state_path", "write_state"]

MAX_EVENTS = 200


@dataclass
class ServingState:
    served: int | None = None
    extra: list[int] = field(default_factory=list)
    history: list[int] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def loaded(self) -> list[int]:
        """Every version that should be loaded in Triton."""
        versions = set(self.extra)
        if self.served is not None:
            versions.add(self.served)
        return sorted(versions)

    @property
    def previous(self) -> int | None:
        """The version a rollback returns to."""
        return self.history[-2] if len(self.history) >= 2 else None

    def removable(self, versions: list[int], loaded: set[int]) -> list[int]:
        """Of ``versions`` on disk, those gc may delete: older than the served one, and
        neither the rollback target nor loaded here or in Triton (``loaded``)."""
        protected = {*self.loaded, *loaded}
        if self.previous is not None:
            protected.add(self.previous)
        return [v for v in versions if self.served is not None and v < self.served
                and v not in protected]

    def record(self, action: str, version: int | None, previous: int | None) -> None:
        self.events.append({"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            "action": action, "version": version, "previous": previous})
        del self.events[:-MAX_EVENTS]


def state_path(repository: Path, model: str, profile: str = "") -> Path:
    return Path(repository) / model / serving_file(profile)


def read_state(repository: Path, model: str, profile: str = "") -> ServingState | None:
    """The saved state of ``profile``, or None when it never recorded one for the model."""
    path = state_path(repository, model, profile)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise ValueError(f"{path}: unreadable serving state: {exc}") from exc
    return ServingState(served=data.get("served"), extra=list(data.get("extra", [])),
                        history=list(data.get("history", [])),
                        events=list(data.get("events", [])))


def write_state(repository: Path, model: str, state: ServingState, profile: str = "") -> None:
    path = state_path(repository, model, profile)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(state), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def startup_versions(repository: Path, model: str, profile: str = "") -> list[int] | None:
    """Versions Triton should load at start-up; None: no state, use config.pbtxt (latest)."""
    state = read_state(repository, model, profile)
    if state is None or state.served is None:
        return None
    present = {int(p.name) for p in (Path(repository) / model).iterdir() if p.name.isdigit()}
    versions = [v for v in state.loaded if v in present]
    return versions or None
