"""Voice to voice as a person in a browser hears it: the demo page in headless Chromium.

``voicechat bench browser --url http://127.0.0.1:8000 --transport webrtc,websocket`` speaks
each question of ``voicechat bench voice``'s set into Chromium's fake microphone (the file
it loops: silence, the question, then silence), lets the /demo page call the service over
the browser's own WebRTC stack (Opus, NetEq jitter buffer, echo cancellation on) or over
its WebSocket fallback, and reads what the page measured itself: from the last sound of
the question to the first sound of the reply, both on the page's audio clock
(``client_heard_ms``, the name ``bench voice`` gives the same figure), beside the server's
``response.done`` timings. Each question is one call in a new session (a history that
grew differently on one transport, as a small model's long replies make it, would decide
the comparison); the transports alternate question by question (A B, then B A). Prints
p50/p95 per transport, what each transport adds to the server's voice to voice (the
page's figure less the server's: the way in and out), and the differences, and writes
``browser.json`` (``--out``).

Needs Debian's ``chromium`` (``make system-deps``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path
from urllib.parse import urlencode

from bench.options import add_api_key, add_output, api_headers

TRANSPORTS = ("webrtc", "websocket")
LEAD_S = 3.0
"""Silence before the question (the call is set up meanwhile)."""


def microphone_file(question_pcm: bytes, rate: int, path: Path, tail_s: float) -> Path:
    """A 48 kHz WAV of the question (PCM16 at ``rate``) between the lead silence and
    ``tail_s`` of silence after it. Chromium loops the file: the tail must outlast the
    wait for the reply, or a reply that runs long hears the question again as a barge-in
    (a model repeating itself at temperature 0 did, past a minute)."""
    import numpy as np

    from bench.speech import resample
    from orchestrator.realtime.audio import encode_wav, pcm16_to_float

    speech = resample(pcm16_to_float(question_pcm), rate, 48000)
    audio = np.concatenate([np.zeros(int(LEAD_S * 48000), np.float32), speech,
                            np.zeros(int(tail_s * 48000), np.float32)])
    path.write_bytes(encode_wav(audio, 48000)[0])
    return path


def temperature_update(temperature: float) -> str:
    """JavaScript that sets the call's temperature in the shape its transport takes."""
    session = json.dumps({"temperature": temperature})
    return (f"send({{type: 'session.update', session: transport === 'webrtc' ? "
            f"Object.assign({{type: 'realtime'}}, {session}) : {session}}})")


async def one_call(page, url: str, temperature: float | None, wait_s: float) -> dict:  # type: ignore[no-untyped-def]
    """Open the page, let it call, wait until the reply has played out; the turn's
    figures (``status`` says what went wrong if it did not)."""
    await page.open(url)
    if temperature is not None:
        if not await page.wait_for("window.demoState && demoState.session && "
                                   "demoState.phase === 'listening'", 30):
            return {"status": "no_session", **await _state(page)}
        await page.evaluate(temperature_update(temperature))
    done = await page.wait_for(
        "(s => (s.errors.length || s.heard.length && s.timings.length && "
        "s.phase === 'listening') && s)(window.demoState)", wait_s)
    state = await _state(page)
    receiver = await page.evaluate(RECEIVER_STATS, await_promise=True) or {}
    await page.evaluate("document.getElementById('hangup').click()")
    await page.wait_for("demoState.phase === 'ended' || demoState.phase === 'error'", 10)
    if not done or state["errors"]:
        return {"status": "failed", **state}
    figures = dict(state["timings"][0])
    figures.update(client_heard_ms=state["heard"][0], status=state["responses"][0],
                   session=state["session"]["id"], transcript=state["userTranscripts"][0],
                   reply=state["assistantTexts"][0] if state["assistantTexts"] else "",
                   **receiver)
    return figures


RECEIVER_STATS = """(async () => {
  if (!pc) return null;
  const out = {};
  (await pc.getStats()).forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "audio" && r.jitterBufferEmittedCount) {
      out.jitter_buffer_ms = 1000 * r.jitterBufferDelay / r.jitterBufferEmittedCount;
      out.concealed_share = r.concealedSamples / Math.max(1, r.totalSamplesReceived);
    }
    if (r.type === "outbound-rtp" && r.kind === "audio" && r.packetsSent)
      out.sent_bytes_per_packet = r.bytesSent / r.packetsSent;
  });
  return out;
})()"""
"""A call's receive and send figures from the browser's own statistics: the mean time a
reply sample spent in its jitter buffer, the share it concealed, and the size of the
microphone's packets (a bitrate: 20 ms each)."""


async def _state(page) -> dict:  # type: ignore[no-untyped-def]
    return await page.evaluate(
        "(s => s && {errors: s.errors, heard: s.heard, timings: s.timings, "
        "responses: s.responses, session: s.session, userTranscripts: s.userTranscripts, "
        "assistantTexts: s.assistantTexts, phase: s.phase})(window.demoState)") or {
        "errors": ["the page did not load"]}


async def measure(url: str, questions: list[bytes], rate: int, transports: tuple[str, ...],
                  rounds: int, key: str | None, temperature: float | None, wait_s: float,
                  language: str) -> dict[str, list[dict]]:
    from bench.chromium import chromium_page

    turns: dict[str, list[dict]] = {t: [] for t in transports}
    with tempfile.TemporaryDirectory(prefix="bench-browser-") as scratch:
        directory = Path(scratch)
        for turn in range(rounds * len(questions)):
            index = turn % len(questions)
            wav = microphone_file(questions[index], rate, directory / f"question{turn}.wav",
                                  tail_s=wait_s + 10)
            async with chromium_page("about:blank", wav, directory / f"profile{turn}") as page:
                order = transports if turn % 2 == 0 else transports[::-1]
                for transport in order:
                    query = {"transport": transport, "autostart": "1", "language": language}
                    if not key:
                        query["user"] = "bench-browser"
                    page_url = f"{url}/demo?{urlencode(query)}" + (f"#key={key}" if key else "")
                    figures = await one_call(page, page_url, temperature, wait_s)
                    figures["question"] = index
                    if "client_heard_ms" in figures and "voice_to_voice_ms" in figures:
                        figures["transport_ms"] = (figures["client_heard_ms"]
                                                   - figures["voice_to_voice_ms"])
                    turns[transport].append(figures)
                    print(f"{transport} turn {turn + 1}: " + (
                        f"heard {figures['client_heard_ms']:.0f} ms, server voice to voice "
                        f"{figures.get('voice_to_voice_ms', float('nan')):.0f} ms, "
                        f"{figures['transcript']!r}" if "client_heard_ms" in figures
                        else f"{figures['status']}: {figures.get('errors')}"), flush=True)
    return turns


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="orchestrator base URL")
    parser.add_argument("--transport", default="webrtc,websocket",
                        help="the page's transports to alternate: webrtc, websocket")
    parser.add_argument("--rounds", type=int, default=1,
                        help="times the whole question set is spoken (per transport)")
    parser.add_argument("--language", choices=("en", "ko"), default="en",
                        help="ko: the Korean questions, spoken by the Kokoro voice")
    parser.add_argument("--temperature", type=float, default=None,
                        help="the calls' LLM temperature (0: the same reply each time)")
    parser.add_argument("--wait", type=float, default=120.0,
                        help="seconds to wait for a turn's reply to play out")
    add_api_key(parser)
    add_output(parser)


def run(args: argparse.Namespace, settings: object) -> int:
    from bench.chromium import CHROMIUM
    from bench.results import write_results
    from bench.voice import KOREAN_QUESTIONS, QUESTIONS, spoken
    from bench.voice_client import RATE
    from bench.voice_report import heard_error_rate, print_summary, summarise

    transports = tuple(t.strip() for t in args.transport.split(",") if t.strip())
    unknown = [t for t in transports if t not in TRANSPORTS]
    if not transports or unknown:
        raise SystemExit(f"--transport: the page's transports are {', '.join(TRANSPORTS)}")
    if CHROMIUM is None:
        raise SystemExit("chromium is not installed (make system-deps)")
    texts = list(KOREAN_QUESTIONS if args.language == "ko" else QUESTIONS)
    questions = [spoken(text, args.language) for text in texts]
    key = (api_headers(args, settings).get("Authorization") or "").removeprefix("Bearer ")
    turns = asyncio.run(measure(args.url.rstrip("/"), questions, RATE, transports,
                                args.rounds, key or None, args.temperature, args.wait,
                                args.language))
    summaries = {}
    for transport, results in turns.items():
        summary = summarise([r for r in results if "client_heard_ms" in r])
        summary.update(heard_error_rate(texts, [r for r in results if "transcript" in r],
                                        args.language))
        summary["failed"] = sum("client_heard_ms" not in r for r in results)
        summaries[transport] = summary
        print_summary(summary, f"--- {transport} (the demo page in Chromium)")
        if summary["failed"]:
            print(f"turns without a reply heard: {summary['failed']}")
    for figure, label in (("client_heard_ms", "heard p50"),
                          ("transport_ms", "heard less the server's voice to voice, p50")):
        p50 = {t: s[figure]["p50"] for t, s in summaries.items() if figure in s}
        if len(p50) == 2:
            first, second = p50
            print(f"{label}: {first} − {second} = {p50[first] - p50[second]:+.0f} ms")
    path = write_results(args.out, "browser", {
        "url": args.url, "transports": list(transports), "rounds": args.rounds,
        "language": args.language, "questions": texts, "temperature": args.temperature},
        {"transports": summaries, "turns": turns})
    print(f"wrote {path}")
    return 0
