"""The speech feature's app-wide dependency: ``catalogue`` (voices and languages the
served models offer), registered by ``orchestrator.app``."""

from __future__ import annotations

from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import SkipValidation

from orchestrator.runtime import Runtime
from orchestrator.speech.catalogue import ModelCatalogue


def provide_catalogue(state: State) -> ModelCatalogue:
    runtime: Runtime = state.runtime
    return runtime.services.catalogue or ModelCatalogue(None)


CATALOGUE = Provide(provide_catalogue, sync_to_thread=False)
CatalogueDep = NamedDependency[SkipValidation[ModelCatalogue]]
