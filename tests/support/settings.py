"""Settings for feature tests: open access (AUTH_MODE=off, allowed on loopback), so each
feature's tests stay about that feature. Access control itself is tested, with keys and
AUTH_MODE=required, in tests/integration/auth/."""

from __future__ import annotations

from orchestrator.settings import Settings

NO_REPOSITORY = "tests-have-no-model-repository"
"""The default MODEL_REPOSITORY of feature tests: none, so the voices and languages a
session may choose are not limited by whatever models a checkout happens to have exported
(tests of that limit build their own repository)."""


def base_settings(**env: str) -> Settings:
    return Settings.from_env({"AUTH_MODE": "off", "MODEL_REPOSITORY": NO_REPOSITORY, **env})
