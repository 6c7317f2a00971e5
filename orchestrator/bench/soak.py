"""Soak: fixed load against a running service for a while, and what grows.

Sends one mix of requests after another from ``--workers`` clients (a chat completion, a
speech synthesis, a transcription of that speech, a session with a stored turn read back,
a memory search), for ``--minutes``. Every ``--sample-s`` it reads the resident memory of
the orchestrator (``--pid``) and of every process under it: ``tritonserver`` and each
python backend stub, named by the model it serves. After a warm-up it prints each
process's RSS at the start and the end and the growth (the goal: under 10 %), with the
requests sent and the errors by status.

    voicechat bench soak --url http://127.0.0.1:8000 [--pid PID] --minutes 10 [--varied]
        [--api-key KEY] [--out DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

from orchestrator.bench.options import add_output
from orchestrator.bench.results import write_results

MIX = ("chat", "speech", "transcription", "session", "memory")


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
    parser.add_argument("--varied", action="store_true",
                        help="vary request sizes (text 1-3000 characters, audio 1-60 s, "
                        "prompts up to the context window), as real and hostile traffic "
                        "does; the default repeats one size of each")
    add_output(parser)


# --- processes --------------------------------------------------------------------------

def _status(pid: int) -> dict[str, str]:
    text = Path(f"/proc/{pid}/status").read_text()
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def _children(pid: int) -> list[int]:
    kids = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            kids += [int(p) for p in (task / "children").read_text().split()]
    return kids


def process_tree(root: int) -> dict[str, int]:
    """name -> pid for the orchestrator, tritonserver and each stub (by model)."""
    named: dict[str, int] = {"orchestrator": root}
    pending = _children(root)
    while pending:
        pid = pending.pop()
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            exe = Path(cmdline[0].decode(errors="replace")).name
            if exe == "tritonserver":
                named["tritonserver"] = pid
            elif "python_backend_stub" in exe:
                model = re.search(rb"/([^/]+)/(\d+)/model\.py", b" ".join(cmdline))
                name = f"{model[1].decode()}:{model[2].decode()}" if model else str(pid)
                named[f"stub {name}"] = pid
            else:
                named[f"{exe} {pid}"] = pid
            pending += _children(pid)
    return named


def serve_process() -> int:
    """The pid of the only ``voicechat serve`` here; SystemExit naming the choice if not."""
    found = []
    for entry in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            words = entry.read_bytes().split(b"\0")
            if b"serve" in words and any(w.endswith((b"voicechat", b"orchestrator"))
                                         for w in words):
                found.append(int(entry.parent.name))
    if len(found) != 1:
        raise SystemExit(f"voicechat bench soak: {len(found)} `voicechat serve` processes "
                         f"here ({found}); pass --pid")
    return found[0]


def rss_mb(pid: int) -> float:
    try:
        return int(_status(pid)["VmRSS"].split()[0]) / 1024
    except (OSError, KeyError, ValueError):
        return float("nan")


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


async def _mix(client: Any, kind: str, audio: bytes, counts: Counter[str], user: str,
               rng: random.Random | None) -> None:
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


async def _worker(client: Any, audio: bytes, counts: Counter[str], stop: float,
                  index: int, varied: bool) -> None:
    rng = random.Random(index) if varied else None
    while time.monotonic() < stop:
        for kind in MIX:
            try:
                await _mix(client, kind, audio, counts, f"soak-{index}", rng)
            except Exception as exc:  # a failure is a figure, not the end of the run
                counts[f"{kind} {type(exc).__name__}"] += 1


async def _soak(args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    async with httpx.AsyncClient(base_url=args.url, headers=headers, timeout=120) as client:
        speech = await client.post("/v1/audio/speech", json={
            "input": "What colour is the sky?", "response_format": "wav"})
        speech.raise_for_status()
        counts: Counter[str] = Counter()
        started = time.monotonic()
        stop = started + args.warmup_s + args.minutes * 60
        workers = [asyncio.create_task(_worker(client, speech.content, counts, stop, i,
                                               args.varied))
                   for i in range(args.workers)]
        await asyncio.sleep(args.warmup_s)
        samples = []
        while time.monotonic() < stop:
            tree = process_tree(args.pid)
            samples.append({"t_s": round(time.monotonic() - started, 1),
                            "rss_mb": {name: round(rss_mb(pid), 1)
                                       for name, pid in tree.items()}})
            print(f"{samples[-1]['t_s']:7.0f}s  " + "  ".join(
                f"{n}={v:.0f}" for n, v in samples[-1]["rss_mb"].items()), flush=True)
            await asyncio.sleep(min(args.sample_s, max(0.0, stop - time.monotonic())))
        await asyncio.gather(*workers)
        samples.append({"t_s": round(time.monotonic() - started, 1),
                        "rss_mb": {n: round(rss_mb(p), 1)
                                   for n, p in process_tree(args.pid).items()}})
    return {"samples": samples, "requests": dict(sorted(counts.items()))}


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
    print(f"\n{'process':<24} {'start MB':>9} {'end MB':>9} {'growth':>8}")
    for name, first, last, pct in rows:
        print(f"{name:<24} {first:>9.0f} {last:>9.0f} {pct:>7.1f}%")
    total_first = sum(r[1] for r in rows)
    total_last = sum(r[2] for r in rows)
    print(f"{'all':<24} {total_first:>9.0f} {total_last:>9.0f} "
          f"{100 * (total_last - total_first) / total_first:>7.1f}%")
    print("\nrequests:", ", ".join(f"{k}: {v}" for k, v in result["requests"].items()))
    result["growth"] = [{"process": n, "start_mb": a, "end_mb": b, "growth_pct": round(p, 2)}
                        for n, a, b, p in rows]
    path = write_results(args.out, "soak", {k: v for k, v in vars(args).items()
                                            if k not in {"api_key", "func"}}, result)
    print(f"results: {path}")
    if not args.no_plots:
        print(f"plot: {plot(result['samples'], Path(args.out) / 'soak.png')}")
    return 0


def plot(samples: list[dict[str, Any]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name in samples[0]["rss_mb"]:
        points = [(s["t_s"] / 60, s["rss_mb"][name]) for s in samples if name in s["rss_mb"]]
        ax.plot(*zip(*points, strict=True), marker=".", label=name)
    ax.set_xlabel("minutes under load")
    ax.set_ylabel("RSS (MB)")
    ax.set_title("Resident memory under a fixed load")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
