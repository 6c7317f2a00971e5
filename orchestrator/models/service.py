"""ModelAdmin: Triton explicit model control over the repository's versions.

Every change is a ``load_model(name, config=json)`` whose ``specific`` version policy
lists exactly the versions that should be loaded (Triton loads the new ones and unloads
the missing ones, with no restart). Requests that name no version go to the *served*
version: the orchestrator's client pins them to it (``TritonClient.default_versions``,
refreshed from ``serving.json`` by :class:`ServingWatcher` in other processes), so a
version loaded for validation or pinned requests never receives unpinned traffic.

Promotion of N over O, with no failed request:

1. load ``[O, N]`` and wait until N is READY (O keeps serving);
2. switch the pin to N and save ``serving.json`` (new requests go to N);
3. wait ``grace_s`` (other processes pick the pin up; requests already sent to O finish);
4. load ``[N]``: Triton unloads O once its in-flight requests are done.

Rollback is the same swap back to the previous served version.

Measured on Triton 2.51: every ``load_model(config=...)`` reloads each listed version
(the new instance loads in the background and replaces the old one when ready; requests
keep being answered), so a swap briefly needs memory for the served version twice plus
the new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import shutil
from collections.abc import Callable
from typing import Any

from tritonclient.utils import InferenceServerException

from export.profiles import repository_profile
from export.repository import ModelRepository
from export.specs import get_spec
from export.specs.base import ModelSpec
from orchestrator.errors import Conflict, InferenceError, InvalidRequest, NotFound
from orchestrator.inference.client import TritonClient
from orchestrator.models.schemas import (
    Check,
    GcResult,
    ModelOut,
    ValidationReport,
    VersionOut,
)
from orchestrator.models.state import ServingState, read_state, write_state
from orchestrator.models.validation import smoke_check, static_checks

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class VersionRefused(Conflict):
    """A version failed validation; nothing changed in what is served (409 conflict)."""


class ModelAdmin:
    def __init__(self, repository: ModelRepository, client: TritonClient, *,
                 specs: Callable[[str], ModelSpec] = get_spec, grace_s: float = 2.0,
                 load_timeout_s: float = 300.0, smoke_timeout_s: float = 120.0,
                 unload_wait_s: float = 60.0, profile: str = "") -> None:
        self.repository = repository
        self.profile = profile
        """The serving profile whose state this admin reads and writes (SERVING_PROFILE)."""
        self.client = client
        self.specs = specs
        self.grace_s = grace_s
        self.load_timeout_s = load_timeout_s
        self.smoke_timeout_s = smoke_timeout_s
        self.unload_wait_s = unload_wait_s
        self._locks: dict[str, asyncio.Lock] = {}

    # --- reading ----------------------------------------------------------------------

    def model_names(self) -> list[str]:
        root = self.repository.root
        if not root.is_dir():
            return []
        return sorted(p.name for p in root.iterdir()
                      if p.is_dir() and _NAME.match(p.name)
                      and ((p / "config.pbtxt").is_file() or self.repository.versions(p.name)))

    async def list_models(self) -> list[ModelOut]:
        index, triton = await self._index()
        return [self._describe(name, index, triton) for name in self.model_names()]

    async def describe(self, model: str) -> ModelOut:
        self._known(model)
        return self._describe(model, *await self._index())

    async def _index(self) -> tuple[list[dict[str, Any]] | None, str]:
        """Triton's repository index and a word on it; ``None`` when Triton is out of
        reach (versions, manifests and the serving state are still read from disk)."""
        try:
            return await self.client.repository_index(), "reachable"
        except InferenceError as exc:
            return None, f"unreachable at {self.client.url}: {exc.message}"

    def _describe(self, model: str, index: list[dict[str, Any]] | None,
                  triton_status: str = "reachable") -> ModelOut:
        triton = {int(e["version"]): e for e in index or []
                  if e.get("name") == model and str(e.get("version", "")).isdigit()}
        state = read_state(self.repository.root, model, self.profile) or ServingState()
        served = state.served if state.served is not None else _highest_ready(triton)
        versions = []
        # Triton remembers versions it once loaded; list those only while still loaded.
        live = {v for v, e in triton.items() if e.get("state") != "UNAVAILABLE"}
        for number in sorted(set(self.repository.versions(model)) | live):
            entry = triton.get(number, {})
            if index is None:
                status, reason = "UNKNOWN", "Triton is unreachable"
            else:
                status = entry.get("state", "UNAVAILABLE")
                reason = entry.get("reason", "" if entry else "not loaded")
            out = VersionOut(version=number, state=status, reason=reason,
                             served=number == served)
            try:
                manifest = self.repository.manifest(model, number)
            except Exception as exc:
                out.manifest_error = str(exc)
            else:
                data = manifest.to_json()
                out.manifest_id, out.created_at = manifest.id, manifest.created_at
                out.source, out.parity = manifest.source, data["parity"]
                out.parity_passed = manifest.parity_passed
            versions.append(out)
        return ModelOut(name=model, served=served, rollback_to=state.previous,
                        versions=versions, history=state.events[-20:], triton=triton_status,
                        profile=self._profile_name())

    def _profile_name(self) -> str:
        try:
            profile = repository_profile(self.repository.root)
        except ValueError as exc:
            return f"unreadable ({exc})"
        return profile.name + ("" if profile.gpu or profile.name == "cpu" else " (CPU instances)")

    def _known(self, model: str) -> ModelSpec:
        if not _NAME.match(model) or not self.repository.model_dir(model).is_dir():
            raise NotFound(f"no model {model!r} in the repository")
        try:
            return self.specs(model)
        except KeyError as exc:
            raise NotFound(f"model {model!r} has no spec: {exc}") from None

    def _version(self, model: str, version: int) -> None:
        if version not in self.repository.versions(model):
            raise NotFound(f"{model} has no version {version} (versions: "
                           f"{self.repository.versions(model) or 'none'})")

    def _lock(self, model: str) -> asyncio.Lock:
        return self._locks.setdefault(model, asyncio.Lock())

    async def _state(self, model: str) -> ServingState:
        """The saved state; first time: what Triton serves now, saved and pinned."""
        state = read_state(self.repository.root, model, self.profile)
        if state is not None:
            return state
        index = await self.client.repository_index()
        triton = {int(e["version"]): e for e in index
                  if e.get("name") == model and str(e.get("version", "")).isdigit()}
        served = _highest_ready(triton)
        ready = [v for v, e in triton.items() if e.get("state") == "READY"]
        state = ServingState(served=served, extra=[v for v in ready if v != served],
                             history=[served] if served is not None else [])
        state.record("adopt", served, None)
        self._save(model, state)
        if served is not None:
            # Other processes start pinning from now on: give them time before any load.
            await asyncio.sleep(self.grace_s)
        return state

    def _save(self, model: str, state: ServingState) -> None:
        write_state(self.repository.root, model, state, self.profile)
        self.apply_pin(model, state)

    def apply_pin(self, model: str, state: ServingState | None) -> None:
        if state is not None and state.served is not None:
            self.client.default_versions[model] = str(state.served)
        else:
            self.client.default_versions.pop(model, None)

    def restore_pins(self) -> None:
        """Pin every model with a saved state (at start-up, and when serving.json changes)."""
        for model in self.model_names():
            with contextlib.suppress(ValueError):
                self.apply_pin(model, read_state(self.repository.root, model, self.profile))

    # --- Triton -----------------------------------------------------------------------

    async def _apply(self, spec: ModelSpec, versions: list[int]) -> None:
        """Make Triton load exactly ``versions`` of the model; wait until all are READY."""
        # The repository's recorded profile (GPU instances, batching), not CPU defaults.
        profile = repository_profile(self.repository.root)
        config = json.dumps(profile.config_json(spec, versions=versions))
        try:
            await self.client.raw.load_model(spec.name, config=config,
                                             client_timeout=self.load_timeout_s)
        except Exception as exc:
            message = exc.message() if isinstance(exc, InferenceServerException) else str(exc)
            raise VersionRefused(f"Triton could not load {spec.name} versions {versions}: "
                                 f"{message}") from exc
        for version in versions:
            if not await self.client.model_ready(spec.name, str(version), timeout_s=10):
                raise VersionRefused(f"{spec.name} version {version} is not ready after load")
        await self._wait_unloaded(spec.name, versions)

    async def _wait_unloaded(self, model: str, keep: list[int]) -> None:
        """Triton answers the load before dropped versions finish their in-flight requests
        and unload; wait for that (bounded), so callers see the final state."""
        deadline = asyncio.get_running_loop().time() + self.unload_wait_s
        while True:
            index = await self.client.repository_index()
            busy = [e["version"] for e in index if e.get("name") == model
                    and str(e.get("version", "")).isdigit() and int(e["version"]) not in keep
                    and e.get("state") in ("READY", "LOADING", "UNLOADING")]
            if not busy:
                return
            if asyncio.get_running_loop().time() > deadline:
                log.warning("%s versions %s still unloading after %.0fs", model, busy,
                            self.unload_wait_s)
                return
            await asyncio.sleep(0.05)

    # --- operations -------------------------------------------------------------------

    async def validate(self, model: str, version: int) -> ValidationReport:
        """Static checks, then (if they pass) a smoke inference on the version, pinned.

        The version is loaded beside the served one for the smoke test and unloaded
        afterwards unless it was loaded before.
        """
        spec = self._known(model)
        self._version(model, version)
        async with self._lock(model):
            return await self._validate(spec, version, keep_loaded=False)

    async def _validate(self, spec: ModelSpec, version: int, keep_loaded: bool
                        ) -> ValidationReport:
        model = spec.name
        checks = await asyncio.to_thread(static_checks, self.repository, spec, version)
        if all(c.passed for c in checks):
            state = await self._state(model)
            before = state.loaded
            try:
                await self._apply(spec, sorted({*before, version}))
                checks.append(Check("load", True, "READY as a pinned version"))
                checks.append(await smoke_check(self.client, spec, version,
                                                  self.smoke_timeout_s))
            except VersionRefused as exc:
                checks.append(Check("load", False, exc.message))
            ok = all(c.passed for c in checks)
            if version not in before and (not keep_loaded or not ok):
                await self._restore(spec, before)
        report = ValidationReport(model=model, version=version,
                                  ok=all(c.passed for c in checks), checks=checks)
        log.info("validated %s version %s: %s", model, version,
                 "ok" if report.ok else report.failures)
        return report

    async def _restore(self, spec: ModelSpec, versions: list[int]) -> None:
        """Back to ``versions`` after a failed or finished check (never raises)."""
        try:
            if versions:
                await self._apply(spec, versions)
            else:
                await self.client.raw.unload_model(spec.name)
        except Exception:
            log.exception("could not restore %s to versions %s", spec.name, versions)

    async def load(self, model: str, version: int) -> ModelOut:
        """Load a version beside the served one (for pinned requests, e.g. ``stt:3``)."""
        spec = self._known(model)
        self._version(model, version)
        async with self._lock(model):
            state = await self._state(model)
            if version not in state.loaded:
                try:
                    await self._apply(spec, sorted({*state.loaded, version}))
                except VersionRefused:
                    await self._restore(spec, state.loaded)
                    raise
                if state.served is None:
                    state.served, state.history = version, [version]
                    state.record("promote", version, None)
                else:
                    state.extra = sorted({*state.extra, version})
                    state.record("load", version, None)
                self._save(model, state)
        return await self.describe(model)

    async def unload(self, model: str, version: int) -> ModelOut:
        spec = self._known(model)
        async with self._lock(model):
            state = await self._state(model)
            if version == state.served:
                raise Conflict(f"{model} version {version} is the served version: promote "
                               "another version (or roll back) before unloading it")
            if version in state.extra:
                state.extra.remove(version)
                await self._apply(spec, state.loaded)
                state.record("unload", version, None)
                self._save(model, state)
        return await self.describe(model)

    async def promote(self, model: str, version: int) -> ModelOut:
        """Validate ``version``, then make it the served version with no failed request."""
        spec = self._known(model)
        self._version(model, version)
        async with self._lock(model):
            state = await self._state(model)
            if state.served == version:
                return await self.describe(model)
            report = await self._validate(spec, version, keep_loaded=True)
            if not report.ok:
                raise VersionRefused(f"{model} version {version} is refused, version "
                                     f"{state.served} stays served: {report.failures}")
            await self._swap(spec, state, version, "promote", loaded=True)
            state.history.append(version)
            self._save(model, state)
        return await self.describe(model)

    async def rollback(self, model: str) -> ModelOut:
        """Serve the version that was served before the current one again."""
        spec = self._known(model)
        async with self._lock(model):
            state = await self._state(model)
            target = state.previous
            if target is None:
                raise Conflict(f"{model} has no previous served version to roll back to")
            if target not in self.repository.versions(model):
                raise Conflict(f"{model} version {target} (the previous served version) is "
                               "no longer in the repository")
            await self._swap(spec, state, target, "rollback",
                             loaded=target in state.loaded)
            state.history.pop()
            self._save(model, state)
        return await self.describe(model)

    async def _swap(self, spec: ModelSpec, state: ServingState, target: int,
                    action: str, *, loaded: bool) -> None:
        old = state.served
        if not loaded:
            try:
                await self._apply(spec, sorted({*state.loaded, target}))  # old keeps serving
            except VersionRefused:
                await self._restore(spec, state.loaded)
                raise
        state.served = target
        state.extra = [v for v in state.extra if v not in (target, old)]
        state.record(action, target, old)
        self._save(spec.name, state)  # pin: new requests go to target from here
        log.info("%s %s: version %s -> %s", action, spec.name, old, target)
        await asyncio.sleep(self.grace_s)  # let other processes re-pin, in-flight finish
        await self._apply(spec, state.loaded)  # Triton unloads old after its requests

    async def gc(self, model: str, *, dry_run: bool = True) -> GcResult:
        """Remove versions older than the served one that nothing needs any more.

        Kept: the served version, the rollback target, versions loaded in Triton, and
        versions newer than the served one (exports waiting to be promoted).
        """
        self._known(model)
        async with self._lock(model):
            state = await self._state(model)
            index = await self.client.repository_index()
            loaded = {int(e["version"]) for e in index if e.get("name") == model
                      and str(e.get("version", "")).isdigit()
                      and e.get("state") not in ("UNAVAILABLE", None)}
            versions = self.repository.versions(model)
            if state.served is None:
                raise Conflict(f"{model} has no served version; gc keeps everything")
            removed = state.removable(versions, loaded)
            if not dry_run:
                for version in removed:
                    shutil.rmtree(self.repository.model_dir(model) / str(version))
                state.history = [v for v in state.history if v not in removed]
                if removed:
                    state.record("gc", None, None)
                    self._save(model, state)
        return GcResult(model=model, dry_run=dry_run, removed=removed,
                        kept=[v for v in versions if v not in removed])


def _highest_ready(triton: dict[int, dict[str, Any]]) -> int | None:
    ready = [v for v, e in triton.items() if e.get("state") == "READY"]
    return max(ready) if ready else None


def parse_version(raw: str) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidRequest(f"version must be a positive integer, not {raw!r}")
    return int(raw)
