"""Soak: mixed load against a running service for a while, and what grows or slows.

Sends one mix of requests after another from ``--workers`` clients (a spoken realtime
turn over ``/ws`` with server VAD, a chat completion, a speech synthesis, a transcription
of that speech, a session with a stored turn read back, a memory search), for
``--minutes``. Every ``--sample-s`` it reads, for the orchestrator (``--pid``) and every
process under it (``tritonserver``, each python backend stub named by its model), the
resident memory and the open file descriptors, and the turns stored for the soak's users.
At the end it prints each process's growth after the warm-up (goal: RSS under 10 %), the
requests and errors by kind (goal: no 5xx), the p95 latency of every ``--window-min``
window (goal: the last within 20 % of the first), and with ``--service-log`` what the
service logged: errors, tracebacks, gRPC GOAWAYs.

    voicechat bench soak --url http://127.0.0.1:8000 [--pid PID] --minutes 60 [--varied]
        [--api-key KEY] [--service-log serve.log] [--out DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.options import add_output
from bench.processes import open_fds, process_tree, rss_mb, serve_process
from bench.results import write_results

MIX = ("realtime", "chat", "speech", "transcription", "session", "memory")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--pid", type=int, default=None,
                        help="the orchestrator's process id (default: the one `voicechat "
                        "serve` process of this machine)")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--warmup-s", type=float, default=60.0,
                        help="load before the first measured sample (caches fill)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sample-s", type=float, default=30.0)
    parser.add_argument("--window-min", type=float, default=5.0,
                        help="latency percentiles per window of this many minutes")
    parser.add_argument("--service-log", default=None,
                        help="the service's log file: count its errors, tracebacks and "
                        "gRPC GOAWAYs over the run")
    parser.add_argument("--varied", action="store_true",
                        help="vary request sizes (text 1-3000 characters, audio 1-60 s, "
                        "prompts up to the context window), as real and hostile traffic "
                        "does; the default repeats one size of each")
    add_output(parser)


# --- load -------------------------------------------------------------------------------

WORDS = ("the", "weather", "is", "fine", "today", "and", "sky", "blue", "over", "quiet", "town")


def _text(rng: random.Random | None, default: str, most: int) -> str:
    if rng is None:
        return default
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, most // 5))) + "."


def _wav(rng: random.Random | None, speech: bytes) -> bytes:
    """The speech clip, or (varied) it padded with silence to 1-60 s."""
    if rng is None:
        return speech
    import io
    import wave

    with wave.open(io.BytesIO(speech)) as clip:
        rate, frames = clip.getframerate(), clip.readframes(clip.getnframes())
    seconds = rng.uniform(1, 60)
    pad = max(0, int(seconds * rate) - len(frames) // 2)
    out = io.BytesIO()
    with wave.open(out, "wb") as padded:
        padded.setnchannels(1)
        padded.setsampwidth(2)
        padded.setframerate(rate)
        padded.writeframes(frames + bytes(2 * pad))
    return out.getvalue()


async def _realtime(client: Any, question: bytes, users: set[str]) -> int:
    """One spoken turn over ``/ws`` with server VAD in a new session (its user joins
    ``users``); 200 when it ends completed or incomplete, 500 on a failed response or
    an ``error`` event."""
    from bench.voice import one_session

    created = await client.post("/api/sessions/new", json={})
    if created.status_code != 201:
        return created.status_code
    session = created.json()
    users.add(session["user_id"])
    # only the key: httpx's own headers (Connection: keep-alive) would break the upgrade
    headers = {k: v for k, v in client.headers.items() if k.lower() == "authorization"}
    url = str(client.base_url).rstrip("/")
    try:
        turns, _ = await one_session(url, [question], 1, 0.0, 120.0, headers, {},
                                     label="realtime ",
                                     resume=url.replace("http", "ws", 1)
                                     + session["websocket_path"])
    except SystemExit:  # one_turn's way of reporting an error event
        return 500
    status = turns[0].get("status") if turns else None
    return 200 if status in ("completed", "incomplete") else 500


async def _mix(client: Any, kind: str, audio: bytes, question: bytes, counts: Counter[str],
               user: str, rng: random.Random | None, users: set[str]) -> int:
    if kind == "realtime":
        status = await _realtime(client, question, users)
        counts[f"{kind} {status}"] += 1
        return status
    if kind == "chat":
        r = await client.post("/v1/chat/completions", json={
            "model": "llm", "max_tokens": rng.randint(1, 200) if rng else 24,
            "temperature": 0, "messages": [{"role": "user", "content": _text(
                rng, "Name three colours.", 6000)}]})
    elif kind == "speech":
        r = await client.post("/v1/audio/speech", json={
            "input": _text(rng, "The weather is fine today.", 3000),
            "response_format": "wav"})
    elif kind == "transcription":
        r = await client.post("/v1/audio/transcriptions",
                              files={"file": ("a.wav", _wav(rng, audio), "audio/wav")},
                              data={"model": "stt"})
    elif kind == "session":
        r = await client.post("/api/sessions/new", json={"user_id": user})
        if r.status_code == 201:
            sid = r.json()["session_id"]
            r = await client.get(f"/api/sessions/{sid}/turns")
            await client.post(f"/api/sessions/{sid}/end")
    else:
        r = await client.get(f"/api/users/{user}/memory/search", params={"q": "colours"})
    counts[f"{kind} {r.status_code}"] += 1
    return r.status_code


async def _worker(client: Any, audio: bytes, question: bytes, counts: Counter[str],
                  latencies: list[tuple[float, str, float, int]], users: set[str],
                  started: float, stop: float, index: int, varied: bool) -> None:
    rng = random.Random(index) if varied else None
    while time.monotonic() < stop:
        for kind in MIX:
            begun = time.monotonic()
            try:
                status = await _mix(client, kind, audio, question, counts, f"soak-{index}",
                                    rng, users)
            except Exception as exc:  # a failure is a figure, not the end of the run
                counts[f"{kind} {type(exc).__name__}"] += 1
                status = 599
            latencies.append((begun - started, kind, time.monotonic() - begun, status))


async def _stored_turns(client: Any, users: set[str]) -> int:
    """Turns stored for the soak's users (rows in the ``turns`` table)."""
    total = 0
    for user in sorted(users):
        with contextlib.suppress(Exception):
            r = await client.get(f"/api/users/{user}/stats")
            if r.status_code == 200:
                total += int(r.json().get("turns", 0))
    return total


async def _soak(args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    from bench.voice import spoken

    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    async with httpx.AsyncClient(base_url=args.url, headers=headers, timeout=120) as client:
        speech = await client.post("/v1/audio/speech", json={
            "input": "What colour is the sky?", "response_format": "wav"})
        speech.raise_for_status()
        question = spoken("What colour is the sky?")
        counts: Counter[str] = Counter()
        latencies: list[tuple[float, str, float, int]] = []
        users: set[str] = set()
        started = time.monotonic()
        stop = started + args.warmup_s + args.minutes * 60
        workers = [asyncio.create_task(_worker(client, speech.content, question, counts,
                                               latencies, users, started, stop, i,
                                               args.varied))
                   for i in range(args.workers)]
        await asyncio.sleep(args.warmup_s)
        samples = []
        while time.monotonic() < stop:
            samples.append(await _sample(client, args, started, users))
            last = samples[-1]
            print(f"{last['t_s']:7.0f}s  turns={last['turns']}  " + "  ".join(
                f"{n}={v:.0f}MB/{last['fds'][n]}fd" for n, v in last["rss_mb"].items()),
                flush=True)
            await asyncio.sleep(min(args.sample_s, max(0.0, stop - time.monotonic())))
        await asyncio.gather(*workers)
        samples.append(await _sample(client, args, started, users))
    return {"samples": samples, "requests": dict(sorted(counts.items())),
            "latencies": [{"t_s": round(t, 2), "kind": k, "s": round(d, 4), "status": c}
                          for t, k, d, c in latencies if t >= args.warmup_s],
            "warmup_s": args.warmup_s}


async def _sample(client: Any, args: argparse.Namespace, started: float,
                  users: set[str]) -> dict[str, Any]:
    tree = process_tree(args.pid)
    return {"t_s": round(time.monotonic() - started, 1),
            "rss_mb": {name: round(rss_mb(pid), 1) for name, pid in tree.items()},
            "fds": {name: open_fds(pid) for name, pid in tree.items()},
            "turns": await _stored_turns(client, users)}


def windows(latencies: list[dict[str, Any]], warmup_s: float, minutes: float
            ) -> list[dict[str, Any]]:
    """p50 / p95 latency (every kind pooled, and per kind) per window of ``minutes``."""
    from bench.stats import percentile

    size = minutes * 60
    grouped: dict[int, list[dict[str, Any]]] = {}
    for row in latencies:
        grouped.setdefault(int((row["t_s"] - warmup_s) // size), []).append(row)
    out = []
    for index in sorted(grouped):
        rows = grouped[index]
        kinds = sorted({r["kind"] for r in rows})
        out.append({"window": index, "from_min": round(index * minutes, 1), "minutes": minutes,
                    "requests": len(rows),
                    "p50_s": round(percentile([r["s"] for r in rows], 50), 3),
                    "p95_s": round(percentile([r["s"] for r in rows], 95), 3),
                    "p95_by_kind_s": {k: round(percentile([r["s"] for r in rows
                                                           if r["kind"] == k], 95), 3)
                                      for k in kinds}})
    return out


def service_log(path: str | None) -> dict[str, int] | None:
    """What the service logged: error lines, tracebacks, gRPC GOAWAYs (too_many_pings)."""
    if not path:
        return None
    text = Path(path).read_text(errors="replace")
    return {"error_lines": sum(1 for line in text.splitlines()
                               if '"level": "ERROR"' in line or " ERROR " in line),
            "tracebacks": text.count("Traceback (most recent call last)"),
            "goaway": text.count("GOAWAY"), "too_many_pings": text.count("too_many_pings")}


def growth(samples: list[dict[str, Any]]) -> list[tuple[str, float, float, float]]:
    """(process, first MB, last MB, growth %) for processes in the first and last sample."""
    first, last = samples[0]["rss_mb"], samples[-1]["rss_mb"]
    return [(name, first[name], last[name], 100 * (last[name] - first[name]) / first[name])
            for name in first if name in last and first[name]]


def run(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    args.pid = args.pid or serve_process()
    result = asyncio.run(_soak(args))
    rows = growth(result["samples"])
    print(f"\n{'process':<24} {'start MB':>9} {'end MB':>9} {'growth':>8} {'fds':>10}")
    first_fds, last_fds = result["samples"][0]["fds"], result["samples"][-1]["fds"]
    for name, first, last, pct in rows:
        print(f"{name:<24} {first:>9.0f} {last:>9.0f} {pct:>7.1f}% "
              f"{first_fds.get(name, -1):>4} -> {last_fds.get(name, -1):<4}")
    total_first = sum(r[1] for r in rows)
    total_last = sum(r[2] for r in rows)
    print(f"{'all':<24} {total_first:>9.0f} {total_last:>9.0f} "
          f"{100 * (total_last - total_first) / total_first:>7.1f}%")
    print(f"turns stored: {result['samples'][0]['turns']} -> "
          f"{result['samples'][-1]['turns']}")
    print("\nrequests:", ", ".join(f"{k}: {v}" for k, v in result["requests"].items()))
    server_errors = sum(v for k, v in result["requests"].items()
                        if k.split()[-1].isdigit() and int(k.split()[-1]) >= 500)
    print(f"5xx: {server_errors}")
    result["windows"] = windows(result["latencies"], result["warmup_s"], args.window_min)
    print(f"\n{'window':>8} {'requests':>9} {'p50 s':>7} {'p95 s':>7}")
    for window in result["windows"]:
        print(f"{window['from_min']:>7.1f}m {window['requests']:>9} {window['p50_s']:>7.3f} "
              f"{window['p95_s']:>7.3f}")
    complete = int(args.minutes // args.window_min)  # the last may be a part of one
    whole = [w for w in result["windows"] if w["window"] < complete and w["requests"] >= 10]
    if len(whole) >= 2:
        first, last = whole[0], whole[-1]
        drift = 100 * (last["p95_s"] - first["p95_s"]) / first["p95_s"]
        result["p95_drift_pct"] = round(drift, 1)
        result["p95_drift_by_kind_pct"] = {
            kind: round(100 * (last["p95_by_kind_s"][kind] - value) / value, 1)
            for kind, value in first["p95_by_kind_s"].items()
            if value and kind in last["p95_by_kind_s"]}
        print(f"p95 drift, first to last whole window: {drift:+.1f} % (by kind: " + ", ".join(
            f"{k} {v:+.0f} %" for k, v in result["p95_drift_by_kind_pct"].items()) + ")")
    result["service_log"] = service_log(args.service_log)
    if result["service_log"] is not None:
        print("service log:", ", ".join(f"{k} {v}" for k, v in result["service_log"].items()))
    result["growth"] = [{"process": n, "start_mb": a, "end_mb": b, "growth_pct": round(p, 2)}
                        for n, a, b, p in rows]
    result["server_errors"] = server_errors
    path = write_results(args.out, "soak", {k: v for k, v in vars(args).items()
                                            if k not in {"api_key", "func"}}, result)
    print(f"results: {path}")
    if not args.no_plots:
        print(f"plot: {plot(result, Path(args.out) / 'soak.png')}")
    return 0


def plot(result: dict[str, Any], path: Path) -> Path:
    """RSS per process, open descriptors, and p95 latency per window, over the run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = result["samples"]
    fig, (rss, fds, latency) = plt.subplots(3, 1, figsize=(8, 9), sharex=True)
    for name in samples[0]["rss_mb"]:
        points = [(s["t_s"] / 60, s["rss_mb"][name], s.get("fds", {}).get(name, -1))
                  for s in samples if name in s["rss_mb"]]
        minutes, mb, open_ = zip(*points, strict=True)
        rss.plot(minutes, mb, marker=".", label=name)
        fds.plot(minutes, open_, marker=".", label=name)
    rss.set_ylabel("RSS (MB)")
    rss.set_title("Resident memory, descriptors and latency under load")
    rss.legend(fontsize=7)
    fds.set_ylabel("open file descriptors")
    windows = result.get("windows", [])
    middles = [result["warmup_s"] / 60 + w["from_min"] + w["minutes"] / 2 for w in windows]
    for kind in sorted({k for w in windows for k in w["p95_by_kind_s"]}):
        points = [(m, w["p95_by_kind_s"][kind]) for m, w in zip(middles, windows, strict=True)
                  if kind in w["p95_by_kind_s"]]
        latency.plot(*zip(*points, strict=True), marker="o", label=kind)
    latency.set_yscale("log")
    latency.legend(fontsize=7)
    latency.set_ylabel("p95 latency per window (s)")
    latency.set_xlabel("minutes since the first request")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
