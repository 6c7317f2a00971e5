"""A repository written under the GPU profile keeps it through start-up, promote, rollback
and validation, as the config Triton itself reports shows.

CPU instances stand in for GPU ones (``--instance-kind cpu``: this machine has no GPU);
the profile's instance count (2 here, 1 in the spec) is what would be lost if anything
reloaded the model with the spec's CPU defaults.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from export import cli as export_cli
from export.profiles import PROFILES, Profile, repository_profile
from export.repository import ModelRepository
from export.roles import ModelProfile
from orchestrator.inference.client import TritonClient
from orchestrator.models.service import ModelAdmin
from orchestrator.models.startup import load_promoted, promoted_versions
from orchestrator.models.validation import check_config
from tests.support import echo
from tests.support import triton as triton_support

pytestmark = [pytest.mark.triton, pytest.mark.asyncio]

MODEL = "echo_profiled"
GPU_COUNT = 2


@pytest.fixture(scope="module")
def gpu_profile():  # type: ignore[no-untyped-def]
    """The GPU profile, with the test model tuned like a role (two instances)."""
    with pytest.MonkeyPatch.context() as patch:
        gpu = PROFILES["gpu"]
        patch.setitem(PROFILES, "gpu", Profile("gpu", gpu.gpu, {
            **gpu.models, MODEL: ModelProfile(instance_count=GPU_COUNT)}))
        yield PROFILES["gpu"]


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory, gpu_profile) -> ModelRepository:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("gpu-repo")
    echo.echo_spec(MODEL)
    assert export_cli.main(["configs", "--profile", "gpu", "--instance-kind", "cpu",
                            "--repo", str(root)]) == 0
    repository = ModelRepository(root)
    for seed in (1.0, 2.0):
        echo.export_echo(repository, MODEL, seed)  # writes config.pbtxt under the profile
    return repository


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, repository: ModelRepository):  # type: ignore[no-untyped-def]
    triton = triton_support.start_private(repository.root, tmp_path_factory.mktemp("gpu-triton"))
    yield triton
    triton.stop()


@pytest.fixture(scope="module")
async def client(server):  # type: ignore[no-untyped-def]
    c = TritonClient(server.grpc_url, timeout_s=60)
    yield c
    await c.close()


async def served_instances(client: TritonClient) -> list[tuple[str, int]]:
    config = (await client.raw.get_model_config(MODEL, as_json=True))["config"]
    return [(g["kind"], int(g["count"])) for g in config["instance_group"]]


def test_the_profile_is_recorded_and_the_configs_follow_it(repository: ModelRepository
                                                          ) -> None:
    record = json.loads((repository.root / "profile.json").read_text())
    assert record == {"profile": "gpu", "instance_kind": "cpu"}
    profile = repository_profile(repository.root)
    assert profile.name == "gpu" and not profile.gpu
    text = (repository.model_dir(MODEL) / "config.pbtxt").read_text()
    assert f"kind: KIND_CPU count: {GPU_COUNT}" in text
    stt = (repository.root / "stt" / "config.pbtxt").read_text()
    assert "preferred_batch_size: [ 4, 8 ]" in stt  # the stt role's GPU batching


async def test_promote_rollback_validate_and_startup_keep_the_profile(
        repository: ModelRepository, server, client: TritonClient) -> None:  # type: ignore[no-untyped-def]
    admin = ModelAdmin(repository, client, grace_s=0.2)
    expected = [("KIND_CPU", GPU_COUNT)]
    await admin.promote(MODEL, 1)
    assert await served_instances(client) == expected
    await admin.promote(MODEL, 2)
    assert await served_instances(client) == expected
    await admin.rollback(MODEL)
    assert (await admin.describe(MODEL)).served == 1
    assert await served_instances(client) == expected
    report = await admin.validate(MODEL, 2)
    assert report.ok, report.failures
    assert any(c.name == "config" and "gpu profile" in c.detail for c in report.checks)
    assert await served_instances(client) == expected

    triton_support.unload(server, MODEL)  # a restart: start-up loads the promoted version
    load_promoted(server.grpc_url, repository.root, promoted_versions(repository.root, [MODEL]))
    assert await client.model_ready(MODEL, "1", timeout_s=30)
    assert await served_instances(client) == expected


def test_a_cpu_config_in_a_gpu_repository_is_refused(repository: ModelRepository,
                                                     tmp_path: Path) -> None:
    path = repository.model_dir(MODEL) / "config.pbtxt"
    good = path.read_text()
    try:
        path.write_text(echo.echo_spec(MODEL).config_pbtxt())  # the spec's CPU defaults
        check = check_config(repository, echo.echo_spec(MODEL))
        assert not check.passed and "gpu profile" in check.detail
        assert "--profile gpu" in check.detail
    finally:
        path.write_text(good)
