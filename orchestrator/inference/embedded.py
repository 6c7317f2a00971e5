"""Triton for this process: the embedded ``tritonserver`` over the repository, loading
each enabled role's promoted versions (``voicechat serve``, ``voicechat triton``, and the
command-line tools that need some models: benches, memory reindex)."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

from export.repository import ModelRepository
from export.roles import ROLES
from orchestrator.inference.health import enabled_models
from orchestrator.inference.server import EmbeddedTriton
from orchestrator.settings import Settings

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class PromotedLoader:
    """How the launcher finds and loads each model's promoted versions. The models feature
    provides it (``orchestrator.models.startup.PROMOTED``) and callers pass it in: the
    models feature sits above inference, so inference does not import it."""

    versions: Callable[[Path, list[str], str], dict[str, list[int]]]
    """(repository, models, serving profile) -> the versions to load, per promoted model."""
    load: Callable[[str, Path, dict[str, list[int]]], None]
    """(gRPC url, repository, plan): load them once the server is up."""


def start_embedded_triton(settings: Settings, promoted_loader: PromotedLoader
                          ) -> EmbeddedTriton:
    """Start tritonserver over the repository, loading each enabled model that has a version
    (promoted versions through ``promoted_loader``)."""
    repository = ModelRepository(settings.model_repository)
    models = [m for m in enabled_models(settings) if repository.versions(m)]
    missing = sorted(set(enabled_models(settings)) - set(models))
    if missing:
        log.warning("no exported version for %s: run `python -m export <model> --source …` "
                    "(see README)", ", ".join(missing))
    promoted = promoted_loader.versions(Path(settings.model_repository), models,  # serving*.json
                                        settings.serving_profile)
    server = EmbeddedTriton(repository=Path(settings.model_repository),
                            work_dir=Path(settings.data_dir) / "triton",
                            grpc_port=settings.triton_grpc_port,
                            http_port=settings.triton_http_port,
                            metrics_port=settings.triton_metrics_port,
                            models=[m for m in models if m not in promoted])
    server.start(settings.triton_startup_timeout_s)
    try:
        promoted_loader.load(server.grpc_url, Path(settings.model_repository), promoted)
    except Exception:
        server.stop()
        raise
    return server


@contextlib.contextmanager
def triton_for(settings: Settings, models: set[str],
               promoted_loader: PromotedLoader) -> Iterator[Settings]:
    """Settings whose ``triton_url`` serves ``models``: TRITON_URL when set, else an
    embedded tritonserver loading only those models, stopped when the block ends
    (command-line tools: reindex, benches)."""
    if settings.triton_url:
        yield settings
        return
    only = dataclasses.replace(settings, **{role.switch: name in models
                                            for name, role in ROLES.items()})
    server = start_embedded_triton(only, promoted_loader)
    try:
        yield dataclasses.replace(settings, triton_url=server.grpc_url)
    finally:
        server.stop()
