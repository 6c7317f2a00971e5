"""REDIS_URL is checked at start-up: a malformed one stops it with one line naming it."""

from __future__ import annotations

import pytest

from orchestrator.settings import Settings, SettingsError


@pytest.mark.parametrize("url", ["redis://redis:6379/0", "rediss://:secret@cache.example:6380",
                                 "unix:///run/redis/redis.sock", "redis://localhost"])
def test_usable_redis_urls_are_accepted(url: str) -> None:
    assert Settings.from_env({"REDIS_URL": url}).redis_url == url


@pytest.mark.parametrize(("url", "reason"), [
    ("http://redis:6379", "use redis://"), ("redis://:pw@/0", "name the host"),
    ("redis://redis:port/0", "not a number"), ("redis://redis/cache", "'cache' is not a number"),
    ("unix://", "name the socket")])
def test_malformed_redis_urls_stop_start_up(url: str, reason: str) -> None:
    with pytest.raises(SettingsError, match="REDIS_URL") as error:
        Settings.from_env({"REDIS_URL": url})
    assert reason in str(error.value)
    assert "pw" not in str(error.value)  # the password is masked


def test_without_redis_url_nothing_is_shared() -> None:
    settings = Settings.from_env({})
    assert settings.redis_url is None and settings.redis_lease_ttl_s == 15.0
    with pytest.raises(SettingsError, match="REDIS_LEASE_TTL_S"):
        Settings.from_env({"REDIS_LEASE_TTL_S": "1"})
