"""docker-compose.yml and the env examples: parsed and checked, since no engine runs here."""

from __future__ import annotations

from pathlib import Path

import yaml

from orchestrator.settings import Settings, load_env_file

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_original_services_with_health_checks() -> None:
    services = compose()["services"]
    for name in ("mariadb", "milvus-etcd", "milvus-minio", "milvus-standalone", "fastapi",
                 "triton"):
        assert name in services, name
        assert "test" in services[name]["healthcheck"], name


def test_orchestrator_waits_for_healthy_dependencies() -> None:
    api = compose()["services"]["fastapi"]
    assert api["depends_on"] == {name: {"condition": "service_healthy"}
                                 for name in ("mariadb", "milvus-standalone", "triton")}
    assert api["env_file"] == ["env.docker"]
    assert api["environment"]["TRITON_URL"] == "triton:8001"
    standalone = compose()["services"]["milvus-standalone"]
    assert set(standalone["depends_on"]) == {"milvus-etcd", "milvus-minio"}


def test_mariadb_runs_the_init_scripts_in_utf8mb4() -> None:
    db = compose()["services"]["mariadb"]
    assert "./init-scripts:/docker-entrypoint-initdb.d:ro" in db["volumes"]
    assert "--character-set-server=utf8mb4" in db["command"]
    assert (ROOT / "init-scripts" / "01-init.sql").is_file()


def test_build_files_exist() -> None:
    services = compose()["services"]
    for name in ("fastapi", "triton"):
        assert (ROOT / services[name]["build"]["dockerfile"]).is_file()


def test_env_examples_load_into_valid_settings(monkeypatch) -> None:
    for example in ("env.local.example", "env.docker.example"):
        for line in (ROOT / example).read_text().splitlines():
            if "=" in line and not line.startswith("#"):
                monkeypatch.delenv(line.split("=")[0], raising=False)
        load_env_file(ROOT / example)
        import os

        settings = Settings.from_env(os.environ)
        assert settings.sql_url.startswith("mysql+aiomysql://")
        assert settings.milvus_target.startswith("http://")
