"""End-to-end realtime load: N simulated users talking over the WebSocket at once.

    voicechat bench e2e --base-url http://127.0.0.1:8000 --sessions 1,2,4,8 --turns 3 \\
        --target-ms 1500

Each simulated session creates a session over REST, opens ``/ws/{user}/{session}``, sets
``input_sample_rate`` and server VAD with ``session.update``, then per turn streams real
speech (espeak-ng, or ``--wav``) as base64 PCM16 ``input_audio_buffer.append`` chunks at
real-time pace, followed by silence (the microphone stays open) until ``response.done``.

Voice-to-voice latency = end of the user's speech (the moment its last chunk was sent,
as a microphone would) -> the first ``response.audio.delta``. It includes the server
VAD's silence window. The client-side breakdown splits it into: vad (speech end ->
``speech_stopped``), stt (-> transcription ``completed``), llm (-> first text or
transcript delta), tts (-> first audio delta); the server's own ``timings`` from
``response.done`` are kept too. "Sustained" is the largest session count whose
``--percentile`` voice-to-voice latency is within ``--target-ms`` with no errors.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.stats import Summary

STAGES = ("vad", "stt", "llm", "tts")
TEXT_EVENTS = ("response.text.delta", "response.audio_transcript.delta")


@dataclass
class Turn:
    """Client-side timestamps (``time.perf_counter``) of one user turn and its reply."""

    speech_end: float = 0.0
    speech_stopped: float | None = None
    transcript_done: float | None = None
    first_text: float | None = None
    first_audio: float | None = None
    done: float | None = None
    status: str | None = None
    transcript: str = ""
    server_timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.first_audio is not None and self.done is not None

    @property
    def voice_to_voice_ms(self) -> float | None:
        if self.first_audio is None:
            return None
        return (self.first_audio - self.speech_end) * 1000

    def stages_ms(self) -> dict[str, float] | None:
        """vad/stt/llm/tts intervals, or None when an event is missing or out of order."""
        points = [self.speech_end, self.speech_stopped, self.transcript_done, self.first_text,
                  self.first_audio]
        if any(p is None for p in points):
            return None
        if any(b < a for a, b in itertools.pairwise(points)):  # type: ignore[operator]
            return None
        return {name: (b - a) * 1000  # type: ignore[operator]
                for name, a, b in zip(STAGES, points, points[1:], strict=False)}


@dataclass
class SessionResult:
    turns: list[Turn] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    """Errors outside a turn (connect, session set-up, server ``error`` events between turns)."""


class _Receiver:
    """Stamps server events onto the current turn."""

    def __init__(self) -> None:
        self.turn: Turn | None = None
        self.turn_over = asyncio.Event()
        self.session_errors: list[str] = []
        self.updated = asyncio.Event()

    def on_event(self, event: dict[str, Any], now: float) -> None:
        kind = event.get("type", "")
        if kind == "session.updated":
            self.updated.set()
            return
        turn = self.turn
        if kind == "error":
            message = (event.get("error") or {}).get("message") or json.dumps(event)[:200]
            if turn is not None and not self.turn_over.is_set():
                turn.error = f"server error: {message}"
                self.turn_over.set()
            else:
                self.session_errors.append(f"server error: {message}")
            return
        if turn is None or self.turn_over.is_set():
            return
        if kind == "input_audio_buffer.speech_stopped" and turn.speech_stopped is None:
            turn.speech_stopped = now
        elif kind == "conversation.item.input_audio_transcription.completed":
            turn.transcript_done = turn.transcript_done or now
            turn.transcript = event.get("transcript", "")
        elif kind in TEXT_EVENTS and turn.first_text is None:
            turn.first_text = now
        elif kind == "response.audio.delta" and turn.first_audio is None:
            turn.first_audio = now
        elif kind == "response.done":
            response = event.get("response") or {}
            turn.done = now
            turn.status = response.get("status")
            turn.server_timings = {k: float(v) for k, v in (response.get("timings") or {}).items()
                                   if isinstance(v, int | float)}
            if turn.status not in (None, "completed", "incomplete"):  # incomplete: cut short
                turn.error = f"response {turn.status}"
            self.turn_over.set()


def _chunks(pcm: bytes, rate: int, chunk_ms: int) -> list[bytes]:
    size = rate * chunk_ms // 1000 * 2
    return [pcm[i:i + size] for i in range(0, len(pcm), size)]


async def run_session(url: str, speech: bytes, *, rate: int = 16_000, turns: int = 1,
                      chunk_ms: int = 40, pace: float = 1.0, turn_timeout_s: float = 60.0,
                      pause_s: float = 0.5, session: dict | None = None,
                      headers: dict[str, str] | None = None) -> SessionResult:
    """One simulated user on the WebSocket at ``url``. ``pace`` < 1 sends faster than
    real time (tests); 1.0 is a real microphone."""
    from websockets.asyncio.client import connect

    result = SessionResult()
    receiver = _Receiver()
    chunk_s = chunk_ms / 1000 * pace
    speech_chunks = _chunks(speech, rate, chunk_ms)
    silence = b"\x00" * (rate * chunk_ms // 1000 * 2)
    update = {"type": "session.update", "session": {"input_sample_rate": rate,
                                                     **(session or {})}}

    try:
        async with connect(url, max_size=16 * 1024 * 1024, open_timeout=30,
                           additional_headers=headers) as ws:
            async def receive() -> None:
                async for message in ws:
                    if isinstance(message, str):
                        receiver.on_event(json.loads(message), time.perf_counter())

            reader = asyncio.create_task(receive())

            async def send_audio(chunk: bytes) -> None:
                await ws.send(json.dumps({"type": "input_audio_buffer.append",
                                          "audio": base64.b64encode(chunk).decode()}))

            try:
                await ws.send(json.dumps(update))
                await asyncio.wait_for(receiver.updated.wait(), 30)
                for _ in range(turns):
                    turn = Turn()
                    receiver.turn, receiver.turn_over = turn, asyncio.Event()
                    result.turns.append(turn)
                    start = time.perf_counter()
                    for i, chunk in enumerate(speech_chunks):  # each chunk once "captured"
                        await _sleep_until(start + (i + 1) * chunk_s)
                        await send_audio(chunk)
                    turn.speech_end = time.perf_counter()
                    deadline = turn.speech_end + turn_timeout_s
                    tick = 0
                    while not receiver.turn_over.is_set():  # the microphone stays open
                        if time.perf_counter() > deadline:
                            turn.error = f"no response.done within {turn_timeout_s:g} s"
                            break
                        tick += 1
                        await _sleep_until(turn.speech_end + tick * chunk_s)
                        await send_audio(silence)
                    await asyncio.sleep(pause_s * pace)
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await reader
    except Exception as exc:  # connection refused, closed by the server, set-up timeout
        result.errors.append(f"{type(exc).__name__}: {exc}")
    result.errors += receiver.session_errors
    return result


async def _sleep_until(when: float) -> None:
    delay = when - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)


@dataclass
class LevelSummary:
    sessions: int
    turns: int
    errors: int
    voice_to_voice_ms: Summary
    stages_ms: dict[str, float]
    """Mean of each client-side stage over the turns where all stages were seen."""
    server_timings_ms: dict[str, float]
    error_samples: list[str]

    def to_json(self) -> dict:
        return {"sessions": self.sessions, "turns": self.turns, "errors": self.errors,
                "voice_to_voice_ms": self.voice_to_voice_ms.to_json(),
                "stages_ms": self.stages_ms, "server_timings_ms": self.server_timings_ms,
                "error_samples": self.error_samples}


def summarize(sessions: int, results: Sequence[SessionResult]) -> LevelSummary:
    turns = [t for r in results for t in r.turns]
    errors = [t.error for t in turns if t.error] + [e for r in results for e in r.errors]
    ok = [t for t in turns if t.ok]
    staged = [s for t in ok if (s := t.stages_ms()) is not None]
    stages = {name: sum(s[name] for s in staged) / len(staged) for name in STAGES} if staged \
        else {}
    keys = sorted({k for t in ok for k in t.server_timings})
    server = {k: sum(t.server_timings[k] for t in ok if k in t.server_timings)
              / sum(1 for t in ok if k in t.server_timings) for k in keys}
    return LevelSummary(sessions=sessions, turns=len(turns), errors=len(errors),
                        voice_to_voice_ms=Summary.of(t.voice_to_voice_ms for t in ok),
                        stages_ms=stages, server_timings_ms=server,
                        error_samples=[e for e in errors if e][:5])


def most_sustained(levels: Sequence[LevelSummary], target_ms: float,
                   q: float = 90) -> int:
    """Largest session count with no errors and its ``q``-th percentile within target."""
    best = 0
    for level in levels:
        value = {50: level.voice_to_voice_ms.p50, 90: level.voice_to_voice_ms.p90,
                 95: level.voice_to_voice_ms.p95, 99: level.voice_to_voice_ms.p99}.get(q)
        if value is None:
            value = float("nan")
        if level.errors == 0 and level.turns and value == value and value <= target_ms:
            best = max(best, level.sessions)
    return best


async def run_level(connect_url: Callable[[], Awaitable[str]], sessions: int, speech: bytes, *,
                    ramp_s: float = 1.0, progress: bool = True, **session_kw: Any) -> LevelSummary:
    """``sessions`` concurrent sessions, started evenly over ``ramp_s`` seconds."""
    from tqdm import tqdm

    bar = tqdm(total=sessions, desc=f"{sessions} sessions", unit="session", leave=False,
               disable=not progress)

    async def one(i: int) -> SessionResult:
        await asyncio.sleep(ramp_s * i / max(sessions, 1))
        try:
            url = await connect_url()
        except Exception as exc:
            return SessionResult(errors=[f"session create: {type(exc).__name__}: {exc}"])
        result = await run_session(url, speech, **session_kw)
        bar.update(1)
        return result

    try:
        results = await asyncio.gather(*(one(i) for i in range(sessions)))
    finally:
        bar.close()
    return summarize(sessions, results)


def http_session_factory(base_url: str, headers: dict[str, str] | None = None
                         ) -> Callable[[], Awaitable[str]]:
    """POST /api/sessions/new, then the WebSocket URL of that session."""
    import httpx

    ws_base = base_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)

    async def create() -> str:
        async with httpx.AsyncClient(base_url=base_url, timeout=30, verify=False,
                                     headers=headers) as client:
            response = await client.post("/api/sessions/new", json={})
            response.raise_for_status()
            return ws_base.rstrip("/") + response.json()["websocket_path"]

    return create


def format_levels(levels: Sequence[LevelSummary]) -> str:
    lines = [f"{'sessions':>8} {'turns':>6} {'err':>4} {'v2v p50':>9} {'p90':>9} {'p95':>9} "
             f"{'p99':>9}  "
             + " ".join(f"{s:>7}" for s in STAGES)]
    for lv in levels:
        v = lv.voice_to_voice_ms
        stages = " ".join(f"{lv.stages_ms.get(s, float('nan')):>7.0f}" for s in STAGES)
        lines.append(f"{lv.sessions:>8} {lv.turns:>6} {lv.errors:>4} {v.p50:>9.0f} "
                     f"{v.p90:>9.0f} {v.p95:>9.0f} {v.p99:>9.0f}  {stages}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from bench.options import _levels, add_session_options

    parser.add_argument("--base-url", default=None,
                        help="orchestrator URL (default http://HOST:PORT from settings)")
    parser.add_argument("--sessions", type=_levels, default=(1, 2, 4, 8),
                        help="concurrent session counts to sweep (default 1,2,4,8)")
    parser.add_argument("--turns", type=int, default=3, help="user turns per session")
    parser.add_argument("--wav", default=None, help="speech WAV (default: espeak-ng)")
    parser.add_argument("--text", default=None, help="what espeak-ng says")
    parser.add_argument("--rate", type=int, choices=(16000, 24000), default=16000,
                        help="input_sample_rate sent in session.update")
    parser.add_argument("--chunk-ms", type=int, default=40, help="audio per append event")
    parser.add_argument("--pace", type=float, default=1.0,
                        help="1.0 streams in real time; 0.5 twice as fast")
    parser.add_argument("--ramp", type=float, default=2.0,
                        help="seconds over which a level's sessions start")
    parser.add_argument("--target-ms", type=float, default=1500.0,
                        help="voice-to-voice latency target")
    parser.add_argument("--percentile", type=int, choices=(50, 90, 95, 99), default=90)
    add_session_options(parser)
    parser.add_argument("--turn-timeout", type=float, default=60.0)
    parser.add_argument("--keep-going", action="store_true",
                        help="sweep every level even after one misses the target")
    parser.add_argument("--no-progress", action="store_true")
    from bench.options import add_api_key, add_output

    add_api_key(parser)
    add_output(parser)


async def sweep_sessions(connect_url: Callable[[], Awaitable[str]], speech: bytes,
                         levels: Sequence[int], *, target_ms: float, q: float = 90,
                         keep_going: bool = False, **kw: Any) -> list[LevelSummary]:
    results = []
    for sessions in levels:
        level = await run_level(connect_url, sessions, speech, **kw)
        results.append(level)
        print(format_levels([level]).splitlines()[-1], flush=True)
        if not keep_going and most_sustained([level], target_ms, q) < sessions:
            break  # more sessions will not do better
    return results


def run(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    from bench import plots
    from bench.options import api_headers, session_options
    from bench.results import write_results
    from bench.speech import load_speech

    base = args.base_url or f"http://{settings.host}:{settings.port}"
    headers = api_headers(args, settings)
    speech = load_speech(args.wav, args.rate, args.text)
    session = session_options(args)
    levels = asyncio.run(sweep_sessions(
        http_session_factory(base, headers), speech, args.sessions, target_ms=args.target_ms,
        q=args.percentile, keep_going=args.keep_going, ramp_s=args.ramp,
        progress=not args.no_progress, rate=args.rate, turns=args.turns,
        chunk_ms=args.chunk_ms, pace=args.pace, turn_timeout_s=args.turn_timeout,
        headers=headers, session=session))
    sustained = most_sustained(levels, args.target_ms, args.percentile)
    print(format_levels(levels))
    print(f"most sessions within p{args.percentile} <= {args.target_ms:g} ms: {sustained}")
    path = write_results(args.out, "e2e", {
        "base_url": base, "sessions": list(args.sessions), "turns": args.turns,
        "speech_seconds": len(speech) / 2 / args.rate, "rate": args.rate,
        "chunk_ms": args.chunk_ms, "pace": args.pace, "target_ms": args.target_ms,
        "session": session,
        "percentile": args.percentile}, {"levels": levels, "sustained_sessions": sustained})
    print(f"wrote {path}")
    if not args.no_plots and levels:
        plots.latency_vs_concurrency(
            {"voice-to-voice": [(lv.sessions, lv.voice_to_voice_ms) for lv in levels]},
            args.out / "e2e-latency.png", title="Voice-to-voice latency")
        plots.stage_breakdown({f"{lv.sessions} sessions": lv.stages_ms for lv in levels
                               if lv.stages_ms}, args.out / "e2e-stages.png",
                              title="Voice-to-voice latency by stage (client view)")
    return 0 if all(lv.errors == 0 for lv in levels) else 1
