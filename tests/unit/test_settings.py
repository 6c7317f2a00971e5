"""Settings: the original variable names, overrides, and clear start-up failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.settings import Settings, SettingsError, load_env_file

ORIGINAL_ENV_LOCAL = """\
ENVIRONMENT=local
DB_HOST=localhost
DB_PORT=3306
DB_USER=voice_chat_user
DB_PASSWORD=voicechat2024
DB_NAME=voice_chat_db

MILVUS_HOST=localhost
MILVUS_PORT=19530
MILVUS_COLLECTION=voice_conversations

EMBEDDING_MODEL=sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2
LOG_LEVEL=INFO

LLM_ENABLED=false
TTS_ENABLED=false
HF_HOME=./.hf_cache
"""


def test_embedded_defaults() -> None:
    s = Settings.from_env({})
    assert s.sql_url == "sqlite+aiosqlite:///data/voicechat.db"
    assert s.milvus_target == "data/milvus.db"
    assert s.triton_url is None and s.auto_migrate and s.tls_files is None


def test_original_env_local_works_unchanged(tmp_path: Path, monkeypatch) -> None:
    env_file = tmp_path / "env.local"
    env_file.write_text(ORIGINAL_ENV_LOCAL)
    for line in ORIGINAL_ENV_LOCAL.splitlines():
        if "=" in line:
            monkeypatch.delenv(line.split("=")[0], raising=False)
    load_env_file(env_file)
    import os

    s = Settings.from_env(os.environ)
    assert s.sql_url == ("mysql+aiomysql://voice_chat_user:voicechat2024@localhost:3306/"
                         "voice_chat_db?charset=utf8mb4")
    assert s.milvus_target == "http://localhost:19530"
    assert s.milvus_collection == "voice_conversations"
    assert (s.llm_enabled, s.tts_enabled) == (False, False)
    assert s.hf_home == "./.hf_cache" and s.environment == "local"
    assert not s.auto_migrate  # a server schema is migrated on purpose: voicechat db upgrade


def test_overrides_win_over_original_variables() -> None:
    s = Settings.from_env({"DB_HOST": "db", "DATABASE_URL": "sqlite+aiosqlite:///x.db",
                           "MILVUS_HOST": "m", "MILVUS_URI": "http://other:19530",
                           "TRITON_URL": "triton:8001"})
    assert s.sql_url == "sqlite+aiosqlite:///x.db"
    assert s.milvus_target == "http://other:19530"
    assert s.triton_url == "triton:8001"


def test_password_is_url_quoted_and_masked() -> None:
    s = Settings.from_env({"DB_HOST": "h", "DB_PASSWORD": "p@ss:w/rd"})
    assert "p%40ss%3Aw%2Frd@h" in s.sql_url
    shown = dict((v, value) for v, value, _ in s.describe())
    assert shown["DB_PASSWORD"] == "***"


@pytest.mark.parametrize(("variable", "value", "reason"), [
    ("DB_PORT", "abc", "expected int"),
    ("PORT", "70000", "at most 65535"),
    ("LLM_ENABLED", "maybe", "true or false"),
    ("LOG_LEVEL", "LOUD", "LOG_LEVEL"),
    ("DATABASE_URL", "postgresql://x", "sqlite+aiosqlite"),
    ("MEMORY_MIN_SCORE", "2", "between 0 and 1"),
    ("TRITON_TIMEOUT_S", "soon", "expected float"),
    ("REALTIME_TURN_DETECTION", "fuzzy_vad", "semantic_vad or server_vad"),
    ("VAD_EAGERNESS", "eager", "low, medium, high or auto"),
    ("REALTIME_SPECULATE_MS", "-1", "at least 0"),
    ("REALTIME_MIN_INTERRUPTION_MS", "soon", "expected int"),
])
def test_bad_values_name_the_variable(variable: str, value: str, reason: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({variable: value})
    assert info.value.variable == variable
    assert reason in str(info.value)


def test_https_only_when_both_files_exist(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("x")
    s = Settings.from_env({"SSL_CRT_FILE": str(cert), "SSL_KEY_FILE": str(key)})
    assert s.tls_files is None
    key.write_text("y")
    assert s.tls_files == (str(cert), str(key))


def test_env_file_keeps_real_environment_and_rejects_garbage(tmp_path: Path,
                                                             monkeypatch) -> None:
    monkeypatch.setenv("DB_NAME", "from_env")
    path = tmp_path / "env"
    path.write_text('DB_NAME=from_file\nexport DB_USER="quoted"\n')
    monkeypatch.delenv("DB_USER", raising=False)
    load_env_file(path)
    import os

    assert os.environ["DB_NAME"] == "from_env" and os.environ["DB_USER"] == "quoted"
    path.write_text("this is not an assignment\n")
    with pytest.raises(SettingsError, match=":1"):
        load_env_file(path)


def test_every_setting_is_documented() -> None:
    rows = Settings.from_env({}).describe()
    assert all(doc.strip() for _, _, doc in rows)
    names = {variable for variable, _, _ in rows}
    original = {"ENVIRONMENT", "DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME",
                "MILVUS_HOST", "MILVUS_PORT", "MILVUS_COLLECTION", "EMBEDDING_MODEL",
                "LOG_LEVEL", "LLM_ENABLED", "TTS_ENABLED", "HF_HOME", "SSL_CRT_FILE",
                "SSL_KEY_FILE", "DATABASE_URL", "MILVUS_URI", "TRITON_URL"}
    assert original <= names


def test_embedding_model_names_the_checkpoint_the_embedder_export_takes(monkeypatch) -> None:
    from export.cli import build_parser

    monkeypatch.setenv("EMBEDDING_MODEL", "/models/paraphrase-multilingual-MiniLM-L12-v2")
    args = build_parser().parse_args(["embedder"])
    assert args.source == "/models/paraphrase-multilingual-MiniLM-L12-v2"
    assert build_parser().parse_args(["embedder", "--source", "x"]).source == "x"
    with pytest.raises(SystemExit):  # the variable is the embedder's only
        build_parser().parse_args(["tts"])
    monkeypatch.delenv("EMBEDDING_MODEL")
    with pytest.raises(SystemExit):  # no variable, no --source: refused, as before
        build_parser().parse_args(["embedder"])
