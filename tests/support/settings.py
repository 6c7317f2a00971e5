"""Settings for feature tests: open access (AUTH_MODE=off, allowed on loopback), so each
feature's tests stay about that feature. Access control itself is tested, with keys and
AUTH_MODE=required, in tests/integration/auth/."""

from __future__ import annotations

from orchestrator.settings import Settings


def base_settings(**env: str) -> Settings:
    return Settings.from_env({"AUTH_MODE": "off", **env})
