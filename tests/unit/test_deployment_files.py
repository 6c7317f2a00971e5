"""docker-compose.yml, the Dockerfiles and the env examples: parsed and checked, since no
engine runs here."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
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


def test_no_database_or_milvus_port_is_published_and_no_password_has_a_default() -> None:
    services = compose()["services"]
    for name in ("mariadb", "milvus-standalone", "milvus-minio", "milvus-etcd"):
        assert "ports" not in services[name], name
    for port in services["triton"].get("ports", []):
        assert port.startswith("127.0.0.1:"), port  # Triton has no authentication
    text = (ROOT / "docker-compose.yml").read_text()
    for secret in ("MARIADB_ROOT_PASSWORD", "DB_PASSWORD", "MINIO_ACCESS_KEY",
                   "MINIO_SECRET_KEY"):
        assert f"${{{secret}:?" in text and f"${{{secret}:-" not in text, secret
    assert "minioadmin" not in text and "change-me" not in text


def test_orchestrator_mounts_the_repository_and_keeps_its_data() -> None:
    api = compose()["services"]["fastapi"]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in api["volumes"]}
    assert mounts["/models"] == "./model_repository"
    assert mounts[api["environment"]["DATA_DIR"]] in compose()["volumes"]
    assert api["environment"]["MODEL_REPOSITORY"] == "/models"
    # exec: the SIGTERM of `docker compose stop` reaches serve, which drains.
    assert "exec voicechat serve" in api["command"][-1]
    assert api["healthcheck"]["test"] == ["CMD", "voicechat", "probe", "ready"]


def test_triton_loads_the_promoted_versions_and_is_ready_only_with_them() -> None:
    triton = compose()["services"]["triton"]
    assert "command" not in triton  # the image's entrypoint: tritonserver + load_promoted
    assert triton["volumes"] == ["./model_repository:/models"]
    assert "/v2/models/$$m/ready" in triton["healthcheck"]["test"][-1]
    entrypoint = (ROOT / "docker" / "triton-entrypoint.sh").read_text()
    assert "--model-control-mode=explicit" in entrypoint
    assert "orchestrator.models.load_promoted" in entrypoint
    assert "--load-model" not in entrypoint  # that would be "latest"


def test_prometheus_scrapes_the_orchestrator_and_triton() -> None:
    prometheus = compose()["services"]["prometheus"]
    config_path = prometheus["volumes"][0].split(":")[0]
    config = yaml.safe_load((ROOT / config_path).read_text())
    targets = {t for job in config["scrape_configs"] for group in job["static_configs"]
               for t in group["targets"]}
    assert targets == {"fastapi:8000", "triton:8002"}


@pytest.mark.parametrize("dockerfile", ["docker/orchestrator.Dockerfile",
                                        "docker/triton.Dockerfile"])
def test_dockerfiles_parse_and_copy_only_what_a_clean_checkout_has(dockerfile: str) -> None:
    from dockerfile_parse import DockerfileParser

    parser = DockerfileParser(path=str(ROOT / dockerfile))
    instructions = [i["instruction"] for i in parser.structure if i["instruction"] != "COMMENT"]
    assert instructions[0] == "FROM" and parser.baseimage
    assert set(instructions) <= KNOWN_INSTRUCTIONS, set(instructions) - KNOWN_INSTRUCTIONS
    tracked = set(subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True,
                                 text=True, check=True).stdout.split())
    for step in parser.structure:
        if step["instruction"] in ("COPY", "ADD"):
            *sources, _ = step["value"].split()
            for source in (s for s in sources if not s.startswith("--")):
                assert source in tracked or any(t.startswith(source.rstrip("/") + "/")
                                                for t in tracked), (dockerfile, source)
    script = ROOT / "docker" / "triton-entrypoint.sh"
    assert subprocess.run(["sh", "-n", str(script)]).returncode == 0
    assert script.stat().st_mode & 0o111  # executable, as ENTRYPOINT runs it


def test_the_orchestrator_image_has_the_realtime_weights_and_a_health_check() -> None:
    text = (ROOT / "docker" / "orchestrator.Dockerfile").read_text()
    assert "silero-vad" in text and "pipecat-ai" in text  # VAD and Smart Turn models
    assert 'HEALTHCHECK' in text and '"probe", "ready"' in text


KNOWN_INSTRUCTIONS = {"FROM", "WORKDIR", "RUN", "COPY", "ADD", "ENV", "ARG", "EXPOSE", "USER",
                      "CMD", "ENTRYPOINT", "HEALTHCHECK", "STOPSIGNAL", "LABEL", "VOLUME"}


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
