"""Dependency providers: handlers declare what they need by parameter name."""

from __future__ import annotations

from typing import Any

from litestar.datastructures import State
from litestar.di import NamedDependency, Provide

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


DEPENDENCIES = {
    "runtime": Provide(provide_runtime, sync_to_thread=False),
    "settings": Provide(provide_settings, sync_to_thread=False),
    "conversations": Provide(provide_conversations, sync_to_thread=False),
}

# Annotations for handler parameters (Litestar 3 drops inferred dependencies).
RuntimeDep = NamedDependency[Runtime]
SettingsDep = NamedDependency[Settings]
ConversationsDep = NamedDependency[ConversationStore]
