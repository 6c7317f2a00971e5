"""Dependency providers: handlers declare what they need by parameter name.

The app-wide ones are here (the runtime, settings, the conversation store); each feature
provides its own services with a typed provider beside its controllers (``chat``,
``stt``, ``tts``, ``embedder``, model ``admin``), answering 503 through
:func:`service_unavailable` when the service is off. The app adds ``principal`` (auth)
and ``catalogue`` (speech) to :data:`DEPENDENCIES` (``orchestrator.app``).
"""

from __future__ import annotations

from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import SkipValidation

from export.roles import ROLES
from orchestrator.errors import AppError, InferenceUnavailable, ServiceDisabled
from orchestrator.runtime import Runtime
from orchestrator.settings import Settings
from storage.conversations import ConversationStore


def provide_runtime(state: State) -> Runtime:
    return state.runtime


def provide_settings(state: State) -> Settings:
    return state.runtime.settings


def provide_conversations(state: State) -> ConversationStore:
    return state.runtime.conversations


def service_unavailable(settings: Settings, role: str | None, what: str) -> AppError:
    """Why a service of ``Runtime.services`` is absent, as the 503 to raise:
    ``service_disabled`` when ``role``'s setting switches it off, else
    ``inference_unavailable`` (it needs Triton, and none is configured)."""
    switch = ROLES[role].switch if role in ROLES else None
    if switch is not None and not getattr(settings, switch):
        return ServiceDisabled(f"{what} is disabled on this server ({switch.upper()}=false)")
    return InferenceUnavailable(f"{what} needs a Triton server (set TRITON_URL or run "
                                "`voicechat serve`)")


DEPENDENCIES = {
    "runtime": Provide(provide_runtime, sync_to_thread=False),
    "settings": Provide(provide_settings, sync_to_thread=False),
    "conversations": Provide(provide_conversations, sync_to_thread=False),
}

# Annotations for handler parameters (Litestar 3 drops inferred dependencies).
# The runtime is built by us, not parsed from the request: skip validating its fields
# (they name services imported only where they are built).
RuntimeDep = NamedDependency[SkipValidation[Runtime]]
SettingsDep = NamedDependency[Settings]
ConversationsDep = NamedDependency[ConversationStore]
