"""Voice-to-voice latency over the realtime WebSocket, as a client would see it.

``voicechat bench voice --url http://127.0.0.1:8000 --turns 20`` speaks a question
(espeak-ng) at real-time pace, then silence, and times each turn: from the last speech
sample sent to the first ``response.audio.delta`` received (client voice-to-voice,
which includes the server VAD's ``silence_duration_ms``), next to the per-stage figures
the server reports in ``response.done``. Prints p50/p95 of each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import tempfile
import time
import wave
from pathlib import Path

import httpx
import numpy as np
import websockets

from orchestrator.bench.options import add_api_key, api_headers
from orchestrator.bench.stats import percentile
from orchestrator.realtime.audio import float_to_pcm16, resample

RATE = 24000
CHUNK_MS = 20
STAGES = ("stt_ms", "llm_first_token_ms", "tts_first_audio_ms", "voice_to_voice_ms",
          "llm_total_ms", "tts_total_ms")


def spoken(text: str, voice: str = "en-us") -> np.ndarray:
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is needed to speak the benchmark question")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "q.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True,
                       capture_output=True)
        with wave.open(str(path)) as w:
            rate = w.getframerate()
            data = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32)
    return resample(data / 32768, rate, RATE)


async def _send_audio(ws, samples: np.ndarray, pace: float) -> None:  # type: ignore[no-untyped-def]
    pcm = float_to_pcm16(samples)
    step = RATE * CHUNK_MS // 1000 * 2
    for start in range(0, len(pcm), step):
        await ws.send(pcm[start:start + step])
        if pace:
            await asyncio.sleep(CHUNK_MS / 1000 / pace)


async def one_turn(ws, question: np.ndarray, pace: float, wait_s: float) -> dict:  # type: ignore[no-untyped-def]
    """Speak, then keep sending silence (as a live microphone does) until the reply ends."""
    await _send_audio(ws, question, pace)
    end_of_speech = time.perf_counter()
    figures: dict = {}
    silence = np.zeros(RATE * CHUNK_MS // 1000, dtype=np.float32)

    async def keep_listening() -> None:
        while True:
            await _send_audio(ws, silence, pace or 1.0)

    mic = asyncio.create_task(keep_listening())
    try:
        async with asyncio.timeout(wait_s):
            while True:
                event = json.loads(await ws.recv())
                if event["type"] == "response.audio.delta" and "client_v2v_ms" not in figures:
                    figures["client_v2v_ms"] = (time.perf_counter() - end_of_speech) * 1000
                elif event["type"] == "error":
                    raise SystemExit(f"server error: {event['error']}")
                elif event["type"] == "response.done":
                    figures.update(event["response"].get("timings") or {})
                    figures["status"] = event["response"]["status"]
                    return figures
    finally:
        mic.cancel()


async def measure(url: str, turns: int, text: str, pace: float, wait_s: float,
                  headers: dict[str, str] | None = None) -> dict:
    question = spoken(text)
    async with httpx.AsyncClient(base_url=url, headers=headers) as http:
        response = await http.post("/api/sessions/new", json={})
        response.raise_for_status()
        session = response.json()
    ws_url = url.replace("http", "ws", 1) + session["websocket_path"]
    results: list[dict] = []
    async with websockets.connect(ws_url, max_size=None, additional_headers=headers) as ws:
        assert json.loads(await ws.recv())["type"] == "session.created"
        await ws.send(json.dumps({"type": "session.update", "session": {
            "input_sample_rate": RATE, "output_sample_rate": RATE}}))
        for turn in range(turns):
            figures = await one_turn(ws, question, pace, wait_s)
            results.append(figures)
            print(f"turn {turn + 1}/{turns}: " + ", ".join(
                f"{k}={v:.0f}" for k, v in figures.items() if isinstance(v, float)), flush=True)
    return summarise(results)


def summarise(results: list[dict]) -> dict:
    summary = {}
    for key in ("client_v2v_ms", *STAGES):
        values = [r[key] for r in results if isinstance(r.get(key), int | float)]
        if values:
            summary[key] = {"p50": percentile(values, 50), "p95": percentile(values, 95),
                            "mean": statistics.fmean(values), "n": len(values)}
    return summary


def print_summary(summary: dict) -> None:
    print(f"{'stage':<22}{'p50 ms':>10}{'p95 ms':>10}{'mean ms':>10}{'n':>5}")
    for key, row in summary.items():
        print(f"{key:<22}{row['p50']:>10.1f}{row['p95']:>10.1f}{row['mean']:>10.1f}{row['n']:>5}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="orchestrator base URL")
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--text", default="What is the capital of France?")
    parser.add_argument("--pace", type=float, default=1.0,
                        help="1.0 sends audio in real time; 0 as fast as possible")
    parser.add_argument("--wait", type=float, default=120.0, help="seconds to wait per reply")
    add_api_key(parser)


def run(args: argparse.Namespace, settings: object) -> int:
    print_summary(asyncio.run(measure(args.url, args.turns, args.text, args.pace, args.wait,
                                      api_headers(args, settings))))
    return 0
