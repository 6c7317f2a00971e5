"""Triton for this process: the embedded ``tritonserver`` over the repository, loading
each enabled role's promoted versions (``voicechat serve``, ``voicechat triton``, and the
command-line tools that need some models: benches, memory reindex)."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path

from orchestrator.settings import Settings

log = logging.getLogger(__name__)


def start_embedded_triton(settings: Settings):  # type: ignore[no-untyped-def]
    """Start tritonserver over the repository, loading each enabled model that has a version."""
    from export.repository import ModelRepository
    from orchestrator.inference.health import enabled_models
    from orchestrator.inference.server import EmbeddedTriton

    repository = ModelRepository(settings.model_repository)
    models = [m for m in enabled_models(settings) if repository.versions(m)]
    missing = sorted(set(enabled_models(settings)) - set(models))
    if missing:
        log.warning("no exported version for %s: run `python -m export <model> --source …` "
                    "(see README)", ", ".join(missing))
    from orchestrator.models.startup import load_promoted, promoted_versions

    promoted = promoted_versions(Path(settings.model_repository), models,  # serving*.json
                                 settings.serving_profile)
    server = EmbeddedTriton(repository=Path(settings.model_repository),
                            work_dir=Path(settings.data_dir) / "triton",
                            grpc_port=settings.triton_grpc_port,
                            http_port=settings.triton_http_port,
                            metrics_port=settings.triton_metrics_port,
                            models=[m for m in models if m not in promoted])
    server.start(settings.triton_startup_timeout_s)
    try:
        load_promoted(server.grpc_url, Path(settings.model_repository), promoted)
    except Exception:
        server.stop()
        raise
    return server


@contextlib.contextmanager
def triton_for(settings: Settings, models: set[str]) -> Iterator[Settings]:
    """Settings whose ``triton_url`` serves ``models``: TRITON_URL when set, else an
    embedded tritonserver loading only those models, stopped when the block ends
    (command-line tools: reindex, benches)."""
    if settings.triton_url:
        yield settings
        return
    from export.roles import ROLES

    only = dataclasses.replace(settings, **{role.switch: name in models
                                            for name, role in ROLES.items()})
    server = start_embedded_triton(only)
    try:
        yield dataclasses.replace(settings, triton_url=server.grpc_url)
    finally:
        server.stop()
