"""Voice-to-voice latency over the realtime WebSocket, as a client would see it.

``voicechat bench voice --url http://127.0.0.1:8000 --sessions 1,2 --rounds 2`` has each
of N concurrent sessions speak every question of a set (espeak-ng, trimmed so that the
clip ends on its last voiced sample) at real-time pace, keep the microphone open with
silence, and time each turn: from the last voiced sample sent to the first
``response.audio.delta`` received (client voice-to-voice, which includes the turn
detector's wait), next to the per-stage figures the server reports in
``response.done`` (turn detection, STT, first token, first audio). Prints p50/p95 of each
per session count, writes ``voice.json`` and plots (``--out``).

``--protocol openai`` speaks OpenAI's Realtime API on ``/v1/realtime`` instead (base64
appends, GA event names, as the official SDK does); ``--protocol webrtc`` (or
``--transport webrtc``) makes WebRTC calls (``POST /v1/realtime/calls``, Opus both ways,
events on the data channel: :mod:`bench.webrtc_peer`), timed from the last voiced sample
to the first audible sample on the reply track, with ``--loss`` of the RTP packets
dropped each way. ``--protocol twilio`` makes phone calls as Twilio streams them
(``WS /v1/twilio/media-stream``, μ-law 8 kHz both ways, the key as the stream's ``token``:
:mod:`bench.twilio_peer`), timed to the first reply ``media``; the stream carries no
events, so only the client's figures are reported, and the session keeps the server's
defaults (no ``session.update`` travels). Several protocols (``ws,webrtc``; ``both`` is
``ws,openai``) alternate round by round in one run, so they are compared on the same
machine state; each one's server CPU per turn (the orchestrator's
``process_cpu_seconds_total``) is reported too.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from bench.options import (
    _levels,
    add_api_key,
    add_output,
    add_session_options,
    api_headers,
    session_options,
)
from bench.speech import espeak
from bench.voice_client import (
    AUDIO_DELTA,
    CHUNK_MS,
    PLAYOUT_ENDED,
    PROTOCOLS,
    RATE,
    append_frame,
    connect_url,
    connection,
    leading_silence_s,
    reply_text,
    session_update,
)
from bench.voice_report import (
    TOKENS,
    heard_error_rate,
    plot,
    print_capacity,
    print_summary,
    summarise,
)

QUESTIONS = (
    "What is the capital of France?",
    "Can you recommend a good book to read?",
    "How far away is the moon?",
    "Tell me a fun fact about octopuses.",
    "What should I cook for dinner tonight?",
    "Why is the sky blue?",
    "How do I make a cup of green tea?",
    "What is the tallest mountain in the world?",
)
KOREAN_QUESTIONS = (
    "한국의 수도는 어디인가요?",
    "읽을 만한 좋은 책을 추천해 주세요.",
    "달까지 거리가 얼마나 되나요?",
    "문어에 대한 재미있는 사실을 알려 주세요.",
    "오늘 저녁에 뭘 요리하면 좋을까요?",
    "하늘은 왜 파란가요?",
    "녹차는 어떻게 만들어요?",
    "세계에서 가장 높은 산은 어디예요?",
)
"""The same eight questions in Korean, spoken by the Kokoro voice (``--language ko``)."""


def spoken(text: str, language: str = "en") -> bytes:
    """PCM16 at :data:`RATE`, from the first to the last voiced sample: espeak-ng for
    English, the Kokoro voice for Korean."""
    if language == "ko":
        import soxr

        from bench.speech import to_pcm16, trim_silence
        from export.stt import testspeech

        audio = testspeech.kokoro_speaker()(text)
        return to_pcm16(trim_silence(soxr.resample(audio, testspeech.SAMPLE_RATE, RATE)))
    return espeak(text, RATE)


async def _send_audio(ws, pcm: bytes, pace: float, protocol: str = "ws") -> None:  # type: ignore[no-untyped-def]
    step = RATE * CHUNK_MS // 1000 * 2
    started = time.perf_counter()
    for i, start in enumerate(range(0, len(pcm), step)):
        await ws.send(append_frame(pcm[start:start + step], protocol))
        if pace:  # on a clock, so slow sends do not add up to a slower voice
            delay = started + (i + 1) * CHUNK_MS / 1000 / pace - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)


async def one_turn(ws, question: bytes, pace: float, wait_s: float,  # type: ignore[no-untyped-def]
                   protocol: str = "ws") -> dict:
    """Speak, then keep sending silence (as a live microphone does) until the reply has
    been heard: its audio plays in real time from its first delta, so the next question
    waits for that (speaking over the reply would be a barge-in, which cuts it).

    ``playback_gap_ms``: how long that playback starved, waiting for audio that had not
    come yet (a first chunk spoken too early for the rest to keep up shows here). A reply
    not done within ``wait_s`` is the status ``timed_out``, with what was measured of it."""
    await _send_audio(ws, question, pace, protocol)
    player = _Player(time.perf_counter(), pace or 1.0)
    figures: dict = {}
    silence = bytes(RATE * CHUNK_MS // 1000 * 2)

    async def keep_listening() -> None:
        while True:
            await _send_audio(ws, silence, pace or 1.0, protocol)

    mic = asyncio.create_task(keep_listening())
    try:
        try:
            async with asyncio.timeout(wait_s):
                await _read_turn(ws, protocol, figures, player)
        except TimeoutError:
            figures["status"] = "timed_out"
        if pace and player.first_audio_at and figures["status"] != "timed_out":
            # pace 0 (tests): no clock, so no listening either
            await asyncio.sleep(max(0.0, player.played_until - time.perf_counter()))
        figures["reply_audio_s"] = round(player.audio_bytes / 2 / RATE, 3)
        if player.first_audio_at:
            figures["playback_gap_ms"] = round(player.gap_s * 1000, 1)
        return figures
    finally:
        mic.cancel()


@dataclasses.dataclass
class _Player:
    """The client's player: audio plays in real time (over ``pace``) from its first delta."""

    end_of_speech: float
    pace: float
    first_audio_at: float = 0.0
    played_until: float = 0.0
    """When the audio queued so far runs out."""
    audio_bytes: int = 0
    gap_s: float = 0.0
    """How long playback starved, waiting for audio."""

    def play(self, delta: str, figures: dict) -> None:
        now = time.perf_counter()
        if "client_v2v_ms" not in figures:
            self.first_audio_at = self.played_until = now
            figures["client_v2v_ms"] = (now - self.end_of_speech) * 1000
        elif now > self.played_until:
            self.gap_s += now - self.played_until
            self.played_until = now
        pcm_bytes = len(delta) * 3 // 4  # base64 -> PCM16
        if "client_heard_ms" not in figures:
            lead = leading_silence_s(delta)
            if lead is not None:  # its first sound plays this far in
                heard = self.first_audio_at + (self.audio_bytes / 2 / RATE + lead) / self.pace
                figures["client_heard_ms"] = (heard - self.end_of_speech) * 1000
        self.audio_bytes += pcm_bytes
        self.played_until += pcm_bytes / 2 / RATE / self.pace


async def _read_turn(ws, protocol: str, figures: dict, player: _Player) -> None:  # type: ignore[no-untyped-def]
    """The turn's events into ``figures`` until its reply is done (on a call: has played
    out on the track)."""
    while True:
        event = json.loads(await ws.recv())
        if event["type"] == AUDIO_DELTA[protocol]:
            player.play(event.get("delta", ""), figures)
        elif event["type"] == "error":
            raise SystemExit(f"server error: {event['error']}")
        elif event["type"] == "conversation.item.input_audio_transcription.completed":
            figures["transcript"] = event["transcript"]
        elif event["type"] == "conversation.item.input_audio_transcription.failed":
            figures["status"] = "transcription_failed"  # no reply will come
            return
        elif event["type"] == "response.done":
            figures.update(event["response"].get("timings") or {})
            figures["status"] = event["response"]["status"]
            figures["reply"] = reply_text(event["response"])
            if protocol != "webrtc" or not player.audio_bytes:
                return
        elif event["type"] in PLAYOUT_ENDED and "status" in figures:
            return  # a call: its reply has played out on the track


async def one_session(url: str, questions: Sequence[bytes], rounds: int, pace: float,
                      wait_s: float, headers: dict[str, str] | None, session: dict,
                      label: str = "", protocol: str = "ws",
                      resume: str | None = None, loss: float = 0.0,
                      ordered_receive: bool = False) -> tuple[list[dict], str]:
    """``rounds`` of the questions in one connection; ``resume``: the URL that continues
    an earlier connection's stored session. Returns the turns and that URL."""
    ws_url = resume or await connect_url(url, headers, protocol)
    results: list[dict] = []
    async with connection(ws_url, headers, protocol, loss, ordered_receive) as ws:
        created = json.loads(await ws.recv())
        assert created["type"] == "session.created", created
        if protocol in ("openai", "webrtc") and resume is None:
            ws_url += f"{'&' if '?' in ws_url else '?'}session_id={created['session']['id']}"
        await ws.send(json.dumps({"type": "session.update",
                                  "session": session_update(session, protocol)}))
        for turn in range(rounds * len(questions)):
            figures = await one_turn(ws, questions[turn % len(questions)], pace, wait_s,
                                     protocol)
            figures["question"] = turn % len(questions)  # which text was spoken
            results.append(figures)
            print(f"{label}turn {turn + 1}: " + ", ".join(
                f"{k}={v:.0f}" for k, v in figures.items()
                if isinstance(v, float) or k in TOKENS)
                + (f", heard {figures['transcript']!r}" if "transcript" in figures else ""),
                flush=True)
            if figures["status"] == "timed_out":
                # its reply is still coming: the next question would interrupt it
                print(f"{label}turn {turn + 1}: no reply done within {wait_s:g} s (--wait); "
                      "this session stops here", flush=True)
                break
            await asyncio.sleep(0.5)
    return results, ws_url


async def measure(url: str, turns: int = 0, text: str | None = None, pace: float = 1.0,
                  wait_s: float = 120.0, headers: dict[str, str] | None = None, *,
                  sessions: int = 1, rounds: int = 1, session: dict | None = None,
                  protocols: Sequence[str] = ("ws",), language: str = "en",
                  loss: float = 0.0, ordered_receive: bool = False) -> dict[str, dict]:
    """``sessions`` concurrent sessions, each speaking every question ``rounds`` times
    (``text``: one question instead; ``turns``: that many turns of it), per protocol.
    Several protocols take turns round by round (A B, B A, …), each reconnecting to its
    own stored sessions, so both see the same history length at about the same time."""
    texts = [text] if text else list(KOREAN_QUESTIONS if language == "ko" else QUESTIONS)
    if text and turns:
        rounds = turns
    questions = [spoken(t, language) for t in texts]
    alternate = len(protocols) > 1
    turns_of: dict[str, list[dict]] = {p: [] for p in protocols}
    cpu_of: dict[str, float] = {p: 0.0 for p in protocols}
    resume: dict[tuple[str, int], str] = {}
    for round_no in range(rounds if alternate else 1):
        # A B, then B A: drift over the run (history, background work) falls on both
        for protocol in (protocols if round_no % 2 == 0 else protocols[::-1]):
            tag = f"{protocol} " if alternate else ""

            async def run_one(i: int, protocol: str = protocol, tag: str = tag) -> list[dict]:
                results, resume[protocol, i] = await one_session(
                    url, questions, 1 if alternate else rounds, pace, wait_s, headers,
                    session or {}, label=tag + (f"[{i + 1}/{sessions}] " if sessions > 1
                                                else ""),
                    protocol=protocol, resume=resume.get((protocol, i)), loss=loss,
                    ordered_receive=ordered_receive)
                return results

            cpu_before = await server_cpu_s(url, headers)
            per_session = await asyncio.gather(*(run_one(i) for i in range(sessions)))
            cpu_of[protocol] += await server_cpu_s(url, headers) - cpu_before
            turns_of[protocol] += [turn for results in per_session for turn in results]
    summaries = {protocol: summarise(results) for protocol, results in turns_of.items()}
    for protocol, summary in summaries.items():
        summary.update(heard_error_rate(texts, turns_of[protocol], language))
        if turns_of[protocol] and cpu_of[protocol] > 0:
            summary["server_cpu_ms_per_turn"] = round(
                cpu_of[protocol] * 1000 / len(turns_of[protocol]), 1)
    return summaries


async def server_cpu_s(url: str, headers: dict[str, str] | None) -> float:
    """The orchestrator's CPU seconds so far (``process_cpu_seconds_total`` on /metrics);
    0 when metrics are off."""
    try:
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as http:
            text = (await http.get("/metrics")).text
    except httpx.HTTPError:
        return 0.0
    for line in text.splitlines():
        if line.startswith("process_cpu_seconds_total "):
            return float(line.split()[1])
    return 0.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="orchestrator base URL")
    parser.add_argument("--sessions", type=_levels, default=(1,),
                        help="concurrent session counts to run, e.g. 1,2")
    parser.add_argument("--rounds", type=int, default=1,
                        help="times each session speaks the whole question set")
    parser.add_argument("--text", default=None, help="one question instead of the set")
    parser.add_argument("--turns", type=int, default=0, help="with --text: how many turns")
    add_session_options(parser)
    parser.add_argument("--pace", type=float, default=1.0,
                        help="1.0 sends audio in real time; 0 as fast as possible")
    parser.add_argument("--wait", type=float, default=120.0, help="seconds to wait per reply")
    parser.add_argument("--protocol", "--transport", type=_protocols, default=("ws",),
                        help="/ws (ws), OpenAI's /v1/realtime (openai), WebRTC calls "
                        "(webrtc), Twilio Media Streams (twilio), or several alternating: "
                        "ws,webrtc (both: ws,openai)")
    parser.add_argument("--loss", type=float, default=0.0,
                        help="webrtc: the share of RTP packets dropped each way (0.05: 5 %%)")
    parser.add_argument("--caller-receive", choices=("aiortc", "ordered"), default="aiortc",
                        help="webrtc: the caller receives through aiortc's jitter buffer "
                             "(80 ms held) or as the server does (packets in order, each "
                             "at once, losses concealed: a browser at its least delay)")
    parser.add_argument("--capacity-p95-ms", type=float, default=1200.0,
                        help="capacity = the most sessions whose client voice to voice p95 "
                             "stays at or under this")
    parser.add_argument("--capacity-gap-ms", type=float, default=100.0,
                        help="… with no playback gap longer than this")
    parser.add_argument("--language", choices=("en", "ko"), default="en",
                        help="ko: the questions in Korean, spoken by the Kokoro voice, in "
                             "sessions set to Korean (serve the Korean profile)")
    add_api_key(parser)
    add_output(parser)


def run(args: argparse.Namespace, settings: object) -> int:
    from bench.results import write_results

    session = session_options(args)
    if args.language != "en":
        session["language"] = args.language
    protocols = args.protocol
    levels: dict[int, dict] = {}
    by_protocol: dict[str, dict[int, dict]] = {p: {} for p in protocols}
    for sessions in args.sessions:
        results = asyncio.run(measure(
            args.url, args.turns, args.text, args.pace, args.wait, api_headers(args, settings),
            sessions=sessions, rounds=args.rounds, session=session, protocols=protocols,
            language=args.language, loss=args.loss,
            ordered_receive=args.caller_receive == "ordered"))
        for protocol, summary in results.items():
            by_protocol[protocol][sessions] = summary
            print_summary(summary, f"--- {sessions} session(s), {protocol}")
        levels[sessions] = results[protocols[0]]
    held = print_capacity(levels, args.capacity_p95_ms, args.capacity_gap_ms)
    out = Path(args.out)
    path = write_results(out, "voice", {
        "url": args.url, "sessions": list(args.sessions), "rounds": args.rounds,
        "questions": [args.text] if args.text else list(
            KOREAN_QUESTIONS if args.language == "ko" else QUESTIONS), "pace": args.pace,
        "language": args.language,
        "turn_detection": args.turn_detection or "server default",
        "temperature": args.temperature, "protocol": ",".join(protocols), "loss": args.loss,
        "caller_receive": args.caller_receive,
        "capacity_p95_ms": args.capacity_p95_ms, "capacity_gap_ms": args.capacity_gap_ms},
        {"levels": levels, "protocols": by_protocol, "capacity_sessions": held})
    print(f"wrote {path}")
    if not args.no_plots:
        plot(levels, out)
    return 0


def _protocols(value: str) -> tuple[str, ...]:
    if value == "both":
        return ("ws", "openai")
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    unknown = [name for name in names if name not in PROTOCOLS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"protocols are {', '.join(PROTOCOLS)} (or both)")
    return names


