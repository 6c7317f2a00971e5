"""``GET /metrics`` after real traffic: HTTP requests by route template and status (a 401
from the auth layer included), rate-limit rejections, realtime sessions and turn stages,
Triton calls and their errors per model."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import httpx
import numpy as np
import pytest
from litestar.testing import AsyncTestClient

from export.specs.base import ModelSpec, Tensor
from orchestrator.errors import ModelNotReady
from orchestrator.inference.client import TritonClient
from tests.support.fake_voice import silence, speak
from tests.support.metrics import sample
from tests.support.realtime import tiny_voice_server
from tests.support.settings import base_settings
from tests.support.tts_fixtures import KOREAN_VOICE

pytestmark = pytest.mark.asyncio
ADMIN = "metrics-admin-key-0123456789abcdef"
REQUESTS = "voicechat_http_requests_total"


def _settings(tmp_path: Path, **changes):  # type: ignore[no-untyped-def]
    return dataclasses.replace(
        base_settings(AUTH_MODE="required", ADMIN_API_KEY=ADMIN),
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'm.db'}", data_dir=str(tmp_path / "d"),
        log_format="text", **{"triton_url": None, **changes})


async def test_requests_by_route_template_and_status_and_rate_limits(tmp_path: Path) -> None:
    from orchestrator.app import create_app

    app = create_app(_settings(tmp_path, rate_limit_requests_per_minute=2))
    async with AsyncTestClient(app=app) as client:
        before = (await client.get("/metrics")).text
        admin = {"Authorization": f"Bearer {ADMIN}"}
        made = await client.post("/admin/keys", json={"user_id": "alice"}, headers=admin)
        alice = {"Authorization": f"Bearer {made.json()['key']}"}
        assert (await client.get("/api/sessions/s-1")).status_code == 401
        assert (await client.get("/api/sessions/s-2", headers=alice)).status_code == 404
        assert (await client.get("/api/sessions/s-3", headers=alice)).status_code == 404
        assert (await client.get("/api/sessions/s-4", headers=alice)).status_code == 429
        page = await client.get("/metrics")  # without a key: scrapers have none
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/plain")
    after = page.text
    route = "/api/sessions/{session_id}"  # the template: ids never become labels

    def moved(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert moved(REQUESTS, path=route, method="GET", status_code="401") == 1
    assert moved(REQUESTS, path=route, status_code="404") == 2
    assert moved(REQUESTS, path=route, status_code="429") == 1
    assert moved(REQUESTS, path="/admin/keys", method="POST", status_code="201") == 1
    assert "s-2" not in after
    assert moved("voicechat_http_request_duration_seconds_count", path=route) == 4
    assert moved("voicechat_rate_limit_rejections_total", limit="requests") == 1
    assert sample(after, REQUESTS, path="/metrics") == 0  # scrapes are not requests


@pytest.mark.triton
async def test_realtime_sessions_and_turn_stages(tmp_path: Path, tiny_voice) -> None:  # type: ignore[no-untyped-def]
    question = speak("What will the weather be like tomorrow", tmp_path, rate=24000)
    async with tiny_voice_server(tmp_path, tiny_voice,
                                 realtime_turn_detection="server_vad") as live:
        session_id = await live.new_session("alice")
        async with httpx.AsyncClient(base_url=live.base_url) as http:
            before = (await http.get("/metrics")).text
            async with live.connect("alice", session_id) as client:
                await client.next()  # session.created
                during = (await http.get("/metrics")).text
                await client.append(np.concatenate([silence(0.5, 24000), question,
                                                    silence(1.0, 24000)]), 24000, chunk_ms=40)
                done = (await client.until("response.done"))[-1]
            for _ in range(50):  # the socket's task ends just after the close
                if live.runtime.live_sessions.count() == 0:
                    break
                await asyncio.sleep(0.02)
            after = (await http.get("/metrics")).text

    def moved(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    status = done["response"]["status"]  # a 16-token reply may end at its limit
    assert status in ("completed", "incomplete"), done
    sessions = "voicechat_realtime_sessions"
    assert sample(during, sessions, protocol="ws") - sample(before, sessions, protocol="ws") == 1
    assert sample(after, sessions, protocol="ws") == sample(before, sessions, protocol="ws")
    assert moved("voicechat_turns_total", transport="realtime", status=status) == 1
    # the turn was answered from its first pause, and that speculative work went out
    assert moved("voicechat_speculative_turns_total", outcome="confirmed") == 1
    stages = "voicechat_turn_stage_seconds_count"
    for stage in ("stt", "llm_first_token", "first_audio", "voice_to_voice"):
        assert moved(stages, stage=stage, transport="realtime") == 1, stage
    # The histogram holds the same figure response.done reports.
    v2v = done["response"]["timings"]["voice_to_voice_ms"] / 1000
    total = "voicechat_turn_stage_seconds_sum"
    assert moved(total, stage="voice_to_voice", transport="realtime") == pytest.approx(v2v)
    # WebSockets are counted by route too, as connections.
    assert moved(REQUESTS, method="websocket", path="/ws/{user_id}/{session_id}") == 1


@pytest.mark.triton
async def test_triton_calls_and_errors_by_model(triton_server, tts_model, tmp_path: Path,
                                                ) -> None:
    from orchestrator.app import create_app

    settings = _settings(tmp_path, auth_mode="off", triton_url=triton_server.grpc_url,
                         stt_enabled=False, llm_enabled=False, memory_enabled=False)
    async with AsyncTestClient(app=create_app(settings)) as client:
        before = (await client.get("/metrics")).text
        spoken = await client.post("/api/tts/synthesize",
                                   json={"text": "안녕하세요", "voice": KOREAN_VOICE})
        assert spoken.status_code == 200, spoken.text
        after = (await client.get("/metrics")).text
    assert sample(after, "voicechat_triton_request_seconds_count", model="tts") > \
        sample(before, "voicechat_triton_request_seconds_count", model="tts")

    missing = ModelSpec(name="no-such-model", description="", inputs=(Tensor("X", "FP32", (1,)),),
                        outputs=(Tensor("Y", "FP32", (1,)),))
    errors = "voicechat_triton_errors_total"
    from prometheus_client import REGISTRY, generate_latest

    before = generate_latest(REGISTRY).decode()
    triton = TritonClient(triton_server.grpc_url, timeout_s=10)
    try:
        with pytest.raises(ModelNotReady):
            await triton.infer(missing, {missing.inputs[0]: np.zeros(1, np.float32)})
    finally:
        await triton.close()
    after = generate_latest(REGISTRY).decode()
    assert sample(after, errors, model="no-such-model", code="model_not_ready") - \
        sample(before, errors, model="no-such-model", code="model_not_ready") == 1
    assert sample(after, "voicechat_triton_request_seconds_count", model="no-such-model",
                  kind="infer") >= 1


async def test_metrics_can_be_turned_off(tmp_path: Path) -> None:
    from orchestrator.app import create_app

    async with AsyncTestClient(app=create_app(_settings(tmp_path, metrics_enabled=False))) as c:
        assert (await c.get("/metrics")).status_code == 404
