"""``voicechat keys`` and ``voicechat config`` as an operator runs them, on SQLite and a
real MariaDB: the key printed once, listed without its secret, revoked; secrets masked."""

from __future__ import annotations

import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor

import pytest

from orchestrator.cli import main
from orchestrator.logging import JsonFormatter, TextFormatter
from orchestrator.settings import get_settings
from storage.api_keys import KeyStore
from storage.database import Database


@pytest.fixture
def voicechat(monkeypatch, capsys, sql_url):  # type: ignore[no-untyped-def]
    """Run ``voicechat ARGS`` in process against the test database; (exit code, stdout)."""
    monkeypatch.setenv("DATABASE_URL", sql_url)

    def run(*argv: str) -> tuple[int, str]:
        get_settings.cache_clear()
        try:  # its own thread: the command runs its own event loop
            with ThreadPoolExecutor(1) as pool:
                code = pool.submit(main, list(argv)).result()
        finally:
            get_settings.cache_clear()
        out = capsys.readouterr()
        return code, out.out + out.err

    return run


async def test_create_list_revoke(voicechat, sql_url) -> None:  # type: ignore[no-untyped-def]
    code, out = voicechat("keys", "create", "--user", "kim", "--name", "mobile app")
    assert code == 0, out
    key = out.strip().splitlines()[-1]
    assert key.startswith("vck_") and len(key) > 40
    code, out = voicechat("keys", "create", "--user", "ops", "--admin")
    assert code == 0 and "admin key" in out

    code, listing = voicechat("keys", "list")
    assert code == 0 and key not in listing and key[:12] in listing
    rows = listing.strip().splitlines()
    assert rows[0].split()[:3] == ["ID", "USER", "PREFIX"]
    kim = next(r for r in rows if " kim " in r)
    assert "mobile app" in kim and "active" in kim
    key_id = kim.split()[0]

    database = Database(sql_url)
    try:
        store = KeyStore(database)
        found = await store.find(key)
        assert found is not None and found.user_id == "kim" and not found.admin
        code, out = voicechat("keys", "revoke", key_id)
        assert code == 0 and f"revoked {key_id}" in out
        assert (await store.find(key)).revoked_at is not None
        assert (await store.get(key_id)).prefix == key[:12]
    finally:
        await database.close()
    _, listing = voicechat("keys", "list", "--user", "kim")
    assert "revoked" in listing and " ops " not in listing


def test_bad_input_is_a_one_line_error(voicechat) -> None:  # type: ignore[no-untyped-def]
    code, out = voicechat("keys", "create", "--user", "not a user!")
    assert code == 2 and "--user must be" in out
    code, out = voicechat("keys", "revoke", "key_missing")
    assert code == 1 and "not found" in out and "Traceback" not in out


def test_config_masks_every_secret(voicechat, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ADMIN_API_KEY", "bootstrap-admin-secret")
    monkeypatch.setenv("DATABASE_URL", "mysql+aiomysql://app:db-pass-123@db:3306/voice")
    monkeypatch.setenv("MILVUS_URI", "http://root:milvus-pass-456@milvus:19530")
    monkeypatch.setenv("DB_PASSWORD", "another-db-secret")
    code, out = voicechat("config")
    assert code == 0
    for secret in ("bootstrap-admin-secret", "db-pass-123", "milvus-pass-456",
                   "another-db-secret"):
        assert secret not in out
    assert "mysql+aiomysql://app:***@db:3306/voice" in out
    assert "http://root:***@milvus:19530" in out


@pytest.mark.parametrize("formatter", [JsonFormatter(), TextFormatter()])
def test_log_lines_mask_keys_tokens_and_url_passwords(formatter) -> None:  # type: ignore[no-untyped-def]
    from orchestrator.redaction import remember_secrets

    remember_secrets("configured-admin-key")
    key = "vck_" + hashlib.sha256(b"x").hexdigest()[:43]
    record = logging.LogRecord("t", logging.WARNING, "", 0, "client sent %s / %s / %s / %s",
                               (f"Authorization: Bearer {key}", "configured-admin-key",
                                "mysql+aiomysql://u:hunter2@db/x",
                                f"openai-insecure-api-key.{key}"), None)
    line = formatter.format(record)
    for secret in (key, key[4:], "configured-admin-key", "hunter2"):
        assert secret not in line
    assert "mysql+aiomysql://u:***@db/x" in line
