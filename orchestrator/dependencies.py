"""Dependency providers: handlers declare what they need by parameter name."""

from __future__ import annotations

from typing import Any

from litestar.datastructures import State
from litestar.di import NamedDependency, Provide

from orchestrator.auth.access import PRINCIPAL
from orchestrator.runtime import Runtime
from orchestrator.settings import Settings
from storage.conversations import ConversationStore


def provide_runtime(state: State) -> Runtime:
    return state.runtime


def provide_settings(state: State) -> Settings:
    return state.runtime.settings


def provide_conversations(state: State) -> ConversationStore:
    return state.runtime.conversations


def provide_service(name: str) -> Provide:
    """A provider for a feature service registered in ``Runtime.services``."""

    def provider(state: State) -> Any:
        return state.runtime.services[name]

    return Provide(provider, sync_to_thread=False)


def provide_model_service(name: str, *, enabled: str, variable: str, what: str) -> Provide:
    """A provider for a model-backed service (``stt``, ``tts``): 503 ``service_disabled``
    when its setting switches it off, 503 ``inference_unavailable`` without Triton."""
    from orchestrator.errors import InferenceUnavailable, ServiceDisabled

    def provider(state: State) -> Any:
        runtime = state.runtime
        if not getattr(runtime.settings, enabled):
            raise ServiceDisabled(f"{what} is disabled ({variable}=false)")
        service = runtime.services.get(name)
        if service is None:
            raise InferenceUnavailable(f"{what} needs a Triton server (set TRITON_URL or run "
                                       "`voicechat serve`)")
        return service

    return Provide(provider, sync_to_thread=False)


DEPENDENCIES = {
    "runtime": Provide(provide_runtime, sync_to_thread=False),
    "settings": Provide(provide_settings, sync_to_thread=False),
    "conversations": Provide(provide_conversations, sync_to_thread=False),
    "principal": PRINCIPAL,
}

# Annotations for handler parameters (Litestar 3 drops inferred dependencies).
RuntimeDep = NamedDependency[Runtime]
SettingsDep = NamedDependency[Settings]
ConversationsDep = NamedDependency[ConversationStore]
