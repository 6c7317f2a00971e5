"""Two orchestrator processes on one MariaDB and one Triton, as several Kubernetes replicas
run: the same keys and users on both, a session created on one continues on the other
(REST and a WebSocket reconnect), an end through one stops turns through the other, a
promotion through one reaches the other within MODEL_PIN_REFRESH_S, rate limits count per
replica without REDIS_URL (test_replicas_redis.py: with it), and memory is shared through
one Milvus server (MILVUS_URI; the embedded standalone of tests.support.milvus_server): a
turn stored through one is found through the other. A Milvus Lite file is one process's:
a second replica on it refuses to start, naming MILVUS_URI."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import httpx
import pytest
import websockets

from orchestrator.models.state import ServingState, write_state
from tests.e2e.test_serve import serve, stop
from tests.support.mariadb import free_port
from tests.support.replicas import ADMIN, start_replicas, text_turn


async def _open(base: str, key: str, user: str, session_id: str):  # type: ignore[no-untyped-def]
    ws = await websockets.connect(f"{base.replace('http', 'ws', 1)}/ws/{user}/{session_id}",
                                  additional_headers={"Authorization": f"Bearer {key}"})
    assert json.loads(await ws.recv())["type"] == "session.created"
    await ws.send(json.dumps({"type": "session.update", "session": {
        "modalities": ["text"], "max_response_output_tokens": 6}}))
    assert json.loads(await ws.recv())["type"] == "session.updated"
    return ws


@pytest.mark.triton
@pytest.mark.mariadb
@pytest.mark.asyncio
async def test_a_session_moves_between_replicas(tmp_path: Path, database: str, triton_server,
                                                tiny_llm, tiny_stt) -> None:
    (one, a, log_a), (two, b, log_b) = start_replicas(
        tmp_path, 2, DATABASE_URL=database, TRITON_URL=triton_server.grpc_url,
        MODEL_REPOSITORY=str(triton_server.repository), STT_ENABLED="true",
        LLM_ENABLED="true", RATE_LIMIT_REQUESTS_PER_MINUTE="5")
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            made = await http.post(f"{a}/admin/keys", json={"user_id": "alice"},
                                   headers={"Authorization": f"Bearer {ADMIN}"})
            key = made.json()["key"]
            auth = {"Authorization": f"Bearer {key}"}
            created = await http.post(f"{a}/api/sessions/new", headers=auth)  # on one
            session_id = created.json()["session_id"]
            seen = await http.get(f"{b}/api/sessions/{session_id}", headers=auth)  # the other
            assert seen.status_code == 200 and seen.json()["user_id"] == "alice"

            ws = await _open(a, key, "alice", session_id)
            first = await text_turn(ws, "Hello from replica one")
            await ws.close()  # a network drop, say: the client reconnects elsewhere
            ws = await _open(b, key, "alice", session_id)
            second = await text_turn(ws, "And hello from replica two")
            assert first["type"] == second["type"] == "response.done"
            turns = (await http.get(f"{a}/api/sessions/{session_id}/turns",
                                    headers=auth)).json()["data"]
            assert [(t["role"], t["text"]) for t in turns][::2] == [
                ("user", "Hello from replica one"), ("user", "And hello from replica two")]
            assert [t["role"] for t in turns] == ["user", "assistant", "user", "assistant"]

            # Ended through one, with the socket open on the other: storage refuses its turns.
            assert (await http.post(f"{a}/api/sessions/{session_id}/end",
                                    headers=auth)).status_code == 200
            late = await text_turn(ws, "Anyone there?")
            await ws.close()
            assert late["type"] == "error" or late["response"]["status"] == "failed"
            after = (await http.get(f"{b}/api/sessions/{session_id}/turns",
                                    headers=auth)).json()["data"]
            assert len(after) == 4

            # Limits count per replica: 5 a minute on each, not 5 in all.
            statuses = {base: [(await http.get(f"{base}/api/users/alice/stats",
                                               headers=auth)).status_code for _ in range(6)]
                        for base in (a, b)}
            assert 429 in statuses[a] and 429 in statuses[b]
            assert statuses[b].count(200) >= 1  # b had its own allowance left
    finally:
        for proc, _, log in ((one, a, log_a), (two, b, log_b)):
            stop(proc, log)


@pytest.mark.triton
@pytest.mark.mariadb
def test_a_promotion_through_one_reaches_the_other(tmp_path: Path, database: str) -> None:
    from tests.support.tts import (
        KOREAN_CHARACTERS,
        build_tiny_vits,
        export_joe,
        export_voices,
        joe_voice_path,
    )

    repository = tmp_path / "repository"
    export_joe(repository, 1)  # v1: joe only
    export_voices(repository, [joe_voice_path(), build_tiny_vits(
        tmp_path / "vits" / "tiny-ko", KOREAN_CHARACTERS)], 2,
        language=["tiny-ko=ko"])  # v2: joe and tiny-ko
    write_state(repository, "tts", ServingState(served=1, history=[1]))
    ports = {"TRITON_GRPC_PORT": str(free_port()), "TRITON_HTTP_PORT": str(free_port()),
             "TRITON_METRICS_PORT": str(free_port())}
    common = {"DATABASE_URL": database, "MODEL_REPOSITORY": str(repository),
              "TTS_ENABLED": "true", "MODEL_PIN_REFRESH_S": "1", "MODEL_SWAP_GRACE_S": "3"}
    # The first replica runs Triton (embedded, promoted versions); the second uses it.
    ((one, a, log_a),) = start_replicas(tmp_path, 1, **common, **ports)
    ((two, b, log_b),) = start_replicas(tmp_path / "b", 1, **common,
                               TRITON_URL=f"127.0.0.1:{ports['TRITON_GRPC_PORT']}")
    admin = {"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"}

    def speak(base: str) -> int:
        body = json.dumps({"input": "안녕", "voice": "tiny-ko", "response_format": "pcm"})
        request = urllib.request.Request(f"{base}/v1/audio/speech", data=body.encode(),
                                         headers=admin)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    try:
        assert speak(b) == 400  # v1 is served: it has no tiny-ko
        state = repository / "tts" / "serving.json"
        seen: dict[str, float] = {}

        def watch() -> None:  # from before the promotion, as a client of b would see it
            deadline = time.monotonic() + 180
            while "followed" not in seen and time.monotonic() < deadline:
                if "switched" not in seen and json.loads(state.read_text())["served"] == 2:
                    seen["switched"] = time.monotonic()
                if speak(b) == 200:
                    seen["followed"] = time.monotonic()
                time.sleep(0.02)

        watcher = threading.Thread(target=watch)
        watcher.start()
        started = time.monotonic()
        promote = urllib.request.Request(f"{a}/admin/models/tts/versions/2/promote",
                                         data=b"{}", headers=admin, method="POST")
        with urllib.request.urlopen(promote, timeout=180) as response:
            assert json.loads(response.read())["served"] == 2
        promoted_s = time.monotonic() - started
        watcher.join()
        assert "followed" in seen, "replica b never followed the promotion"
        lag = seen["followed"] - seen["switched"]
        print(f"\npromotion took {promoted_s:.1f} s; the other replica followed {lag:.2f} s "
              f"after serving.json switched (MODEL_PIN_REFRESH_S=1)")
        assert lag <= 1 + 2  # the refresh interval, and a request's time
        assert speak(a) == 200
    finally:
        stop(two, log_b)
        stop(one, log_a)


@pytest.mark.triton
@pytest.mark.mariadb
@pytest.mark.realweights
@pytest.mark.asyncio
async def test_a_turn_stored_through_one_is_recalled_through_the_other(
        tmp_path: Path, database: str, triton_server, tiny_llm, tiny_stt, embedder,
        milvus_server) -> None:
    """Memory across replicas: both on one Milvus server. Alice's turn on replica a is
    written to memory after the reply; replica b's memory search finds it, and only for
    her."""
    (one, a, log_a), (two, b, log_b) = start_replicas(
        tmp_path, 2, DATABASE_URL=database, TRITON_URL=triton_server.grpc_url,
        MODEL_REPOSITORY=str(triton_server.repository), STT_ENABLED="true",
        LLM_ENABLED="true", MEMORY_ENABLED="true", MILVUS_URI=milvus_server.uri,
        MILVUS_COLLECTION=f"replicas_{uuid.uuid4().hex[:10]}")
    said = "My dog is a golden retriever called Max."
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            admin = {"Authorization": f"Bearer {ADMIN}"}
            keys = {user: (await http.post(f"{a}/admin/keys", json={"user_id": user},
                                           headers=admin)).json()["key"]
                    for user in ("alice", "bob")}
            auth = {"Authorization": f"Bearer {keys['alice']}"}
            session_id = (await http.post(f"{a}/api/sessions/new",
                                          headers=auth)).json()["session_id"]
            ws = await _open(a, keys["alice"], "alice", session_id)
            assert (await text_turn(ws, said))["type"] == "response.done"
            await ws.close()

            async def search(base: str, user: str) -> httpx.Response:
                return await http.get(
                    f"{base}/api/users/{user}/memory/search",
                    params={"q": "What is the name of my pet?", "min_score": 0.3},
                    headers={"Authorization": f"Bearer {keys[user]}"})

            deadline, hits = time.monotonic() + 60, []
            while not hits and time.monotonic() < deadline:  # a's write follows its reply
                found = await search(b, "alice")
                assert found.status_code == 200, found.text
                hits = found.json()["hits"]
                await asyncio.sleep(0.5)
            assert hits, "replica b never found the turn stored through replica a"
            assert hits[0]["text"] == said and hits[0]["session_id"] == session_id
            other = await search(b, "bob")
            assert other.status_code == 200 and other.json()["hits"] == []
    finally:
        for proc, _, log in ((one, a, log_a), (two, b, log_b)):
            stop(proc, log)


def test_replicas_cannot_share_a_milvus_lite_file(tmp_path: Path) -> None:
    """A Milvus Lite store is one process's: a second replica on it stops before start-up
    in one line naming MILVUS_URI and a Milvus server (rather than failing inside the
    app's start or running without memory); the test above shares a server instead."""
    from pymilvus import MilvusClient

    store = tmp_path / "milvus.db"
    holder = MilvusClient(str(store))  # the first replica has it open
    try:
        proc, _ = serve(tmp_path, MEMORY_ENABLED="true", TRITON_URL="127.0.0.1:1",
                        MILVUS_URI=str(store))
        output = proc.communicate(timeout=60)[0].decode()
    finally:
        holder.close()
    assert proc.returncode == 2, output
    assert "MILVUS_URI" in output and "another process" in output
    assert "Milvus server" in output


@pytest.mark.triton
@pytest.mark.mariadb
@pytest.mark.asyncio
async def test_sigterm_during_a_turn_lets_it_finish_and_closes_1001(
        tmp_path: Path, database: str, triton_server, tiny_llm, tiny_stt) -> None:
    """The real signal to a real `voicechat serve`: the reply in flight completes, the
    socket gets server_shutting_down and 1001, and the process exits 0."""
    ((proc, base, log),) = start_replicas(
        tmp_path, 1, DATABASE_URL=database, TRITON_URL=triton_server.grpc_url,
        MODEL_REPOSITORY=str(triton_server.repository), STT_ENABLED="true",
        LLM_ENABLED="true")
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            made = await http.post(f"{base}/admin/keys", json={"user_id": "alice"},
                                   headers={"Authorization": f"Bearer {ADMIN}"})
            key = made.json()["key"]
            created = await http.post(f"{base}/api/sessions/new",
                                      headers={"Authorization": f"Bearer {key}"})
        session_id = created.json()["session_id"]
        ws = await _open(base, key, "alice", session_id)
        await ws.send(json.dumps({"type": "session.update", "session": {
            "max_response_output_tokens": 64}}))
        assert json.loads(await ws.recv())["type"] == "session.updated"
        await ws.send(json.dumps({"type": "conversation.item.create", "item": {
            "type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "Tell me a long story"}]}}))
        await ws.send(json.dumps({"type": "response.create"}))
        while json.loads(await ws.recv())["type"] != "response.created":
            pass
        proc.send_signal(15)
        events = []
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                events.append(json.loads(await asyncio.wait_for(ws.recv(), 60)))
        kinds = [e["type"] for e in events]
        assert "response.done" in kinds, kinds
        # it ran to its end, not cancelled: the tiny random model writes until its 64-token
        # limit (incomplete, max_output_tokens) unless it falls into a loop first
        done = events[kinds.index("response.done")]["response"]
        assert done["status"] in ("completed", "incomplete"), done["status_details"]
        assert kinds[-1] == "error" and events[-1]["error"]["code"] == "server_shutting_down"
        assert closed.value.rcvd.code == 1001
        assert proc.wait(timeout=60) == 0
    finally:
        output = stop(proc, log) if proc.poll() is None else log.read_text()
    assert "draining: 1 realtime sockets" in output
