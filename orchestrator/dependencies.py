"""Dependency providers: handlers declare what they need by parameter name."""

from __future__ import annotations

from typing import Any

from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import SkipValidation

from orchestrator.auth.access import PRINCIPAL
from orchestrator.runtime import Runtime
from orchestrator.settings import Settings
from orchestrator.speech.catalogue import ModelCatalogue
from storage.conversations import ConversationStore


def provide_runtime(state: State) -> Runtime:
    return state.runtime


def provide_settings(state: State) -> Settings:
    return state.runtime.settings


def provide_conversations(state: State) -> ConversationStore:
    return state.runtime.conversations


def provide_catalogue(state: State) -> ModelCatalogue:
    return state.runtime.services.catalogue or ModelCatalogue(None)


def service_or_503(runtime: Runtime, name: str, what: str) -> Any:
    """``runtime.services.<name>``, or a 503 that says why it is off: ``service_disabled``
    when its role's setting switches it off, ``inference_unavailable`` without Triton."""
    from export.roles import ROLES
    from orchestrator.errors import InferenceUnavailable, ServiceDisabled

    service = getattr(runtime.services, name)
    if service is not None:
        return service
    role = ROLES.get("embedder" if name == "memory" else name)
    if role is not None and not getattr(runtime.settings, role.switch):
        raise ServiceDisabled(f"{what} is disabled on this server ({role.switch.upper()}=false)")
    raise InferenceUnavailable(f"{what} needs a Triton server (set TRITON_URL or run "
                               "`voicechat serve`)")


def provide_service(name: str, what: str) -> Provide:
    """A provider for one of ``Runtime.services``: the service, or a 503 saying why not."""

    def provider(state: State) -> Any:
        return service_or_503(state.runtime, name, what)

    return Provide(provider, sync_to_thread=False)


DEPENDENCIES = {
    "runtime": Provide(provide_runtime, sync_to_thread=False),
    "settings": Provide(provide_settings, sync_to_thread=False),
    "conversations": Provide(provide_conversations, sync_to_thread=False),
    "catalogue": Provide(provide_catalogue, sync_to_thread=False),
    "principal": PRINCIPAL,
}

# Annotations for handler parameters (Litestar 3 drops inferred dependencies).
# The runtime is built by us, not parsed from the request: skip validating its fields
# (they name services imported only where they are built).
RuntimeDep = NamedDependency[SkipValidation[Runtime]]
SettingsDep = NamedDependency[Settings]
ConversationsDep = NamedDependency[ConversationStore]
CatalogueDep = NamedDependency[SkipValidation[ModelCatalogue]]
