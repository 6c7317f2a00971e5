"""Embedded Triton start-up: load each model's promoted versions, not "latest"."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from export.profiles import repository_profile
from export.specs import get_spec
from orchestrator.inference.embedded import PromotedLoader
from orchestrator.models.state import startup_versions

log = logging.getLogger(__name__)


def promoted_versions(repository: Path, models: list[str], profile: str = ""
                      ) -> dict[str, list[int]]:
    """Models with a saved serving state under ``profile``, and the versions to load."""
    plan = {}
    for model in models:
        try:
            versions = startup_versions(repository, model, profile)
        except ValueError as exc:
            log.warning("%s; loading the latest version of %s", exc, model)
            continue
        if versions:
            plan[model] = versions
    return plan


def load_promoted(grpc_url: str, repository: Path, plan: dict[str, list[int]]) -> None:
    """Load each model of ``plan`` with a specific version policy under the repository's
    profile (blocking)."""
    import tritonclient.grpc as grpcclient

    profile = repository_profile(repository)
    client = grpcclient.InferenceServerClient(grpc_url)
    try:
        for model, versions in plan.items():
            config = json.dumps(profile.config_json(get_spec(model), versions=versions))
            log.info("loading %s versions %s (promoted)", model, versions)
            client.load_model(model, config=config)
    finally:
        client.close()


PROMOTED = PromotedLoader(versions=promoted_versions, load=load_promoted)
"""What the embedded Triton launcher is given (``start_embedded_triton``, ``triton_for``)."""
