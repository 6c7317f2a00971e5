"""``voicechat models`` against a real Triton, and a restart that must load the promoted
version (not the latest) from serving.json."""

from __future__ import annotations

import json

import pytest
import tritonclient.grpc as grpcclient

from export.repository import ModelRepository
from orchestrator.cli import main
from orchestrator.inference.server import EmbeddedTriton
from orchestrator.models.startup import load_promoted, promoted_versions
from orchestrator.settings import get_settings
from tests.support import echo
from tests.support import triton as triton_support
from tests.support.mariadb import free_port

pytestmark = pytest.mark.triton

MODEL = "echo_restart"


@pytest.fixture
def cli(triton_server, monkeypatch, capsys):  # type: ignore[no-untyped-def]
    repo = ModelRepository(triton_server.repository)
    echo.echo_spec(MODEL)
    if not repo.versions(MODEL):
        for seed in (1.0, 2.0):
            echo.export_echo(repo, MODEL, seed)

    def run(*args: str, url: str = triton_server.grpc_url) -> tuple[int, str, str]:
        monkeypatch.setenv("TRITON_URL", url)
        monkeypatch.setenv("MODEL_REPOSITORY", str(triton_server.repository))
        monkeypatch.setenv("MODEL_SWAP_GRACE_S", "0.1")
        monkeypatch.setenv("LOG_FORMAT", "text")
        get_settings.cache_clear()
        try:
            code = main(["models", *args])
        finally:
            get_settings.cache_clear()
        out = capsys.readouterr()
        return code, out.out, out.err

    run.repository = repo  # type: ignore[attr-defined]
    yield run
    triton_support.unload(triton_server, MODEL)


def test_cli_promote_rollback_and_restart_loads_the_promoted_version(cli, tmp_path):
    repo = cli.repository
    assert cli("promote", MODEL, "1")[0] == 0
    code, out, _ = cli("promote", MODEL, "2")
    assert code == 0 and f"{MODEL}: served 2, rollback to 1" in out
    code, out, _ = cli("rollback", MODEL)
    assert code == 0 and f"{MODEL}: served 1, rollback to none" in out

    code, out, _ = cli("validate", MODEL, "2")
    assert code == 0 and "version 2: valid" in out and "ok   smoke" in out
    code, out, _ = cli("gc", MODEL)
    assert code == 0 and "would remove versions none" in out

    # a fresh Triton over the same repository: the promoted version 1, not the latest 2
    assert promoted_versions(repo.root, [MODEL, "absent"]) == {MODEL: [1]}
    second = EmbeddedTriton(repository=repo.root, work_dir=tmp_path / "second",
                            grpc_port=free_port(), http_port=free_port(),
                            metrics_port=free_port())
    second.start(timeout_s=120)
    try:
        load_promoted(second.grpc_url, repo.root, promoted_versions(repo.root, [MODEL]))
        client = grpcclient.InferenceServerClient(second.grpc_url)
        try:
            assert client.is_model_ready(MODEL, "1")
            assert not client.is_model_ready(MODEL, "2")
        finally:
            client.close()
        code, out, _ = cli("show", MODEL, "--json", url=second.grpc_url)
        shown = json.loads(out)
        assert shown["served"] == 1
        assert [(v["version"], v["state"]) for v in shown["versions"]] == [
            (1, "READY"), (2, "UNAVAILABLE")]
    finally:
        second.stop()


def test_cli_errors(cli):
    broken = echo.export_echo(cli.repository, MODEL, 3.0)
    expected = echo.break_version(cli.repository, MODEL, broken, "missing_file")
    try:
        code, out, _ = cli("validate", MODEL, str(broken))
        assert code == 1 and "REFUSED" in out and f"FAIL files     {expected}" in out
        code, _, err = cli("promote", MODEL, str(broken))
        assert code == 1 and "is refused" in err and expected in err
    finally:
        echo.remove_version(cli.repository, MODEL, broken)
    code, _, err = cli("promote", MODEL)
    assert code == 2 and "expected MODEL VERSION" in err
    code, _, err = cli("show", "nope")
    assert code == 1 and "no model 'nope'" in err


def test_cli_list_works_from_disk_without_triton(cli):
    """Versions, manifests and the served pin are on disk: no Triton needed to list them."""
    repo = cli.repository
    assert cli("promote", MODEL, "1")[0] == 0
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    code, out, err = cli("list", url=dead)
    assert code == 0, err
    assert f"triton: unreachable at {dead}" in out
    assert "VERSION  STATE" in out and "None" not in out
    ids = {v: repo.manifest(MODEL, v).id for v in repo.versions(MODEL)}
    assert f" *       1  UNKNOWN      {ids[1]}" in out
    assert f"         2  UNKNOWN      {ids[2]}" in out
    code, out, _ = cli("show", MODEL, "--json", url=dead)
    shown = json.loads(out)
    assert code == 0 and shown["served"] == 1 and shown["triton"].startswith("unreachable")
    assert {v["state"] for v in shown["versions"]} == {"UNKNOWN"}
