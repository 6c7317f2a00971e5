"""Model versions on a real Triton (explicit mode): promote, roll back, refuse, gc.

A tiny test model (tests/support/echo.py) answers with its version's manifest id.
While client tasks send steady requests, versions swap: no request may fail, and the
answers must switch to the new version's manifest id.
"""

from __future__ import annotations

import json

import pytest

from export.repository import ModelRepository
from orchestrator.errors import Conflict, NotFound
from orchestrator.inference.client import TritonClient
from orchestrator.models.service import ModelAdmin, VersionRefused
from orchestrator.models.state import read_state, startup_versions
from tests.support import echo
from tests.support.traffic import Traffic

pytestmark = [pytest.mark.triton, pytest.mark.asyncio]

MODEL = "echo_versioned"


@pytest.fixture(scope="module")
def repository(triton_server) -> ModelRepository:  # type: ignore[no-untyped-def]
    return echo.two_versions(triton_server.repository, MODEL)


@pytest.fixture(scope="module")
async def client(triton_server):  # type: ignore[no-untyped-def]
    c = TritonClient(triton_server.grpc_url, timeout_s=60)
    yield c
    await c.close()


@pytest.fixture(scope="module")
def admin(repository: ModelRepository, client: TritonClient) -> ModelAdmin:
    return ModelAdmin(repository, client, grace_s=0.3)


def ids(repository: ModelRepository, model: str = MODEL) -> dict[int, str]:
    return {v: repository.manifest(model, v).id for v in repository.versions(model)}


def sender(client: TritonClient, version: str = ""):  # type: ignore[no-untyped-def]
    spec = echo.SPEC

    async def send() -> str:
        result = await client.infer(spec, {echo.TEXT: ["hi"]}, version=version)
        answer = result.text(echo.MANIFEST_ID)
        # Triton's own record of who answered must agree with the model's answer
        assert result.model_version and answer == ID_OF[int(result.model_version)]
        return answer

    return send


ID_OF: dict[int, str] = {}


async def test_promote_then_rollback_under_steady_traffic(admin, repository, client):
    ID_OF.update(ids(repository))
    await admin.promote(MODEL, 1)
    assert (await admin.describe(MODEL)).served == 1

    async with Traffic(sender(client), tasks=3) as traffic:
        await traffic.until_answered_by(ID_OF[1])
        promoted = await admin.promote(MODEL, 2)
        assert promoted.served == 2 and promoted.rollback_to == 1
        await traffic.until_answered_by(ID_OF[2])
        rolled = await admin.rollback(MODEL)
        assert rolled.served == 1
        await traffic.until_answered_by(ID_OF[1])

    assert traffic.errors == []
    for task in range(traffic.tasks):
        assert traffic.phases(task) == [ID_OF[1], ID_OF[2], ID_OF[1]]
    print(f"\n{traffic.total()} requests across promote + rollback, 0 failed")

    # Triton serves only version 1 again, and the state file remembers the history
    view = await admin.describe(MODEL)
    states = {v.version: v.state for v in view.versions}
    assert states == {1: "READY", 2: "UNAVAILABLE"}
    state = read_state(repository.root, MODEL)
    assert state is not None and state.served == 1 and state.history == [1]
    assert [e["action"] for e in state.events][-2:] == ["promote", "rollback"]
    assert startup_versions(repository.root, MODEL) == [1]


@pytest.mark.parametrize("how", echo.BREAKAGES)
async def test_broken_version_is_refused_and_traffic_untouched(admin, repository, client, how):
    ID_OF.update(ids(repository))
    await admin.promote(MODEL, 1)
    broken = echo.export_echo(repository, MODEL, 3.0)
    expected = echo.break_version(repository, MODEL, broken, how)
    try:
        async with Traffic(sender(client), tasks=2) as traffic:
            await traffic.until_answered_by(ID_OF[1], count=3)
            with pytest.raises(VersionRefused) as refused:
                await admin.promote(MODEL, broken)
            await traffic.until_answered_by(ID_OF[1], count=3)
        assert expected in refused.value.message
        assert "version 1 stays served" in refused.value.message
        assert traffic.errors == []
        assert {a for answers in traffic.answers for a in answers} == {ID_OF[1]}
        view = await admin.describe(MODEL)
        assert view.served == 1
        assert {v.version: v.state for v in view.versions}[broken] == "UNAVAILABLE"
    finally:
        echo.remove_version(repository, MODEL, broken)


async def test_version_whose_code_fails_to_load_is_refused(admin, repository, client):
    await admin.promote(MODEL, 1)
    bad = echo.export_echo(repository, MODEL, 4.0)
    try:
        # a version that passes every file check but whose model.py raises in Triton
        vdir = repository.model_dir(MODEL) / str(bad)
        code = vdir / "model.py"
        code.write_text(code.read_text() + "\nraise RuntimeError('boom at import')\n")
        manifest = json.loads((vdir / "manifest.json").read_text())
        from export.repository import sha256_file

        manifest["files"]["model.py"] = sha256_file(code)
        (vdir / "manifest.json").write_text(json.dumps(manifest))
        report = await admin.validate(MODEL, bad)
        assert not report.ok
        assert [c.name for c in report.checks if not c.passed] == ["load"]
        async with Traffic(sender(client), tasks=2) as traffic:
            with pytest.raises(VersionRefused, match="could not load"):
                await admin.promote(MODEL, bad)
            await traffic.until_answered_by(ID_OF[1], count=3)
        assert traffic.errors == []
        assert (await admin.describe(MODEL)).served == 1
    finally:
        echo.remove_version(repository, MODEL, bad)


async def test_validate_runs_every_check_and_leaves_serving_alone(admin, repository):
    await admin.promote(MODEL, 1)
    report = await admin.validate(MODEL, 2)
    assert report.ok, report.failures
    assert [c.name for c in report.checks] == ["config", "manifest", "files", "onnx", "parity",
                                               "load", "smoke"]
    view = await admin.describe(MODEL)
    assert view.served == 1
    assert {v.version: v.state for v in view.versions} == {1: "READY", 2: "UNAVAILABLE"}


async def test_load_a_version_for_pinned_requests(admin, repository, client):
    ID_OF.update(ids(repository))
    await admin.promote(MODEL, 1)
    await admin.load(MODEL, 2)
    # unpinned requests stay on the served version although 2 is higher and loaded
    assert await sender(client)() == ID_OF[1]
    assert await sender(client, "2")() == ID_OF[2]
    with pytest.raises(Conflict, match="served version"):
        await admin.unload(MODEL, 1)
    view = await admin.unload(MODEL, 2)
    assert {v.version: v.state for v in view.versions} == {1: "READY", 2: "UNAVAILABLE"}
    assert await sender(client)() == ID_OF[1]


async def test_listing_shows_versions_states_and_manifests(admin, repository):
    await admin.promote(MODEL, 1)
    models = {m.name: m for m in await admin.list_models()}
    view = models[MODEL]
    assert view.served == 1
    first = view.versions[0]
    assert first.version == 1 and first.state == "READY" and first.served
    assert first.manifest_id == repository.manifest(MODEL, 1).id
    assert first.source == {"kind": "echo", "seed": 1.0}
    assert first.parity_passed and first.parity[0]["name"] == "offset"
    assert first.created_at


async def test_unknown_model_and_version(admin):
    with pytest.raises(NotFound, match="no model"):
        await admin.describe("nope")
    with pytest.raises(NotFound, match="has no version 99"):
        await admin.promote(MODEL, 99)
    with pytest.raises(NotFound):
        await admin.describe("../etc")


async def test_gc_removes_only_old_unserved_versions(repository, client):
    model = "echo_gc"
    echo.echo_spec(model)
    for seed in (1.0, 2.0, 3.0, 4.0, 5.0):
        echo.export_echo(repository, model, seed)
    admin = ModelAdmin(repository, client, grace_s=0.1)
    await admin.promote(model, 1)
    await admin.promote(model, 4)  # rollback target: 1
    plan = await admin.gc(model)
    assert plan.dry_run and plan.removed == [2, 3] and plan.kept == [1, 4, 5]
    assert repository.versions(model) == [1, 2, 3, 4, 5]  # dry run touched nothing
    done = await admin.gc(model, dry_run=False)
    assert done.removed == [2, 3]
    assert repository.versions(model) == [1, 4, 5]
    rolled = await admin.rollback(model)  # the rollback target survived
    assert rolled.served == 1
    assert (await admin.gc(model, dry_run=False)).removed == []  # nothing older than 1
    await client.raw.unload_model(model)
