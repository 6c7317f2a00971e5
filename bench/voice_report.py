"""What ``voicechat bench voice`` prints and plots from its turns: percentiles per stage,
capacity per session count, and where voice to voice goes."""

from __future__ import annotations

import statistics
from pathlib import Path

from bench.stats import Summary, percentile
from bench.wer import error_rate

STAGES = ("turn_detection_ms", "stt_ms", "stt_tail_ms", "prompt_ms", "llm_start_ms",
          "llm_first_token_ms", "first_chunk_ms", "tts_first_audio_ms", "voice_to_voice_ms",
          "llm_total_ms", "tts_total_ms")
TOKENS = ("llm_new_tokens", "llm_cached_tokens")
"""Prompt tokens the first token waited for, and those found in the LLM's prefix cache."""


def summarise(results: list[dict]) -> dict:
    summary: dict = {}
    for key in ("client_v2v_ms", "client_heard_ms", "transport_ms", "jitter_buffer_ms",
                *STAGES, "playback_gap_ms", *TOKENS):
        values = [r[key] for r in results if isinstance(r.get(key), int | float)]
        if values:
            summary[key] = {"p50": percentile(values, 50), "p95": percentile(values, 95),
                            "mean": statistics.fmean(values), "max": max(values),
                            "n": len(values), "values": [round(v, 1) for v in values]}
    summary["statuses"] = sorted({r.get("status", "?") for r in results})
    summary["timed_out"] = sum(1 for r in results if r.get("status") == "timed_out")
    return summary


def heard_error_rate(texts: list[str], results: list[dict], language: str) -> dict:
    """The turns' transcripts against the questions spoken: WER (CER for Korean), so that a
    faster turn that heard less shows (trailing silence cut short changes transcripts)."""
    heard = [(texts[r["question"]], r["transcript"]) for r in results
             if "transcript" in r and "question" in r]
    if not heard:
        return {}
    metric, score = error_rate(language)
    references, transcripts = zip(*heard, strict=True)
    return {metric: round(score(references, transcripts), 4)}


def print_summary(summary: dict, title: str = "") -> None:
    if title:
        print(title)
    print(f"{'stage':<22}{'p50 ms':>10}{'p95 ms':>10}{'mean ms':>10}{'max ms':>10}{'n':>5}")
    for key, row in summary.items():
        if isinstance(row, dict):
            print(f"{key:<22}{row['p50']:>10.1f}{row['p95']:>10.1f}{row['mean']:>10.1f}"
                  f"{row['max']:>10.1f}{row['n']:>5}")
    for rate in ("wer", "cer"):
        if rate in summary:
            print(f"transcripts {rate.upper()} against the questions: {summary[rate]:.3f}")
    if "server_cpu_ms_per_turn" in summary:
        print(f"server CPU per turn: {summary['server_cpu_ms_per_turn']:.0f} ms")
    if summary.get("timed_out"):
        print(f"{summary['timed_out']} turn(s) got no finished reply within --wait; their "
              "sessions stopped there")


def capacity(levels: dict[int, dict], p95_ms: float, gap_ms: float) -> int:
    """The most concurrent sessions whose client voice to voice held ``p95 <= p95_ms`` with
    no playback gap longer than ``gap_ms`` and every reply done in time, counted up from
    the smallest level measured (a level that fails stops the count: a larger one passing
    by chance says nothing); 0 when even the smallest fails."""
    held = 0
    for sessions in sorted(levels):
        level = levels[sessions]
        v2v, gaps = level.get("client_v2v_ms"), level.get("playback_gap_ms")
        if v2v is None or v2v["p95"] > p95_ms or (gaps is not None and gaps["max"] > gap_ms) \
                or level.get("timed_out"):
            break
        held = sessions
    return held


def print_capacity(levels: dict[int, dict], p95_ms: float, gap_ms: float) -> int:
    print(f"{'sessions':>8}{'v2v p50 ms':>12}{'v2v p95 ms':>12}{'gaps':>6}{'max gap ms':>12}")
    for sessions, level in sorted(levels.items()):
        v2v, gaps = level.get("client_v2v_ms", {}), level.get("playback_gap_ms", {})
        starved = sum(1 for v in gaps.get("values", []) if v > 0)
        print(f"{sessions:>8}{v2v.get('p50', float('nan')):>12.0f}"
              f"{v2v.get('p95', float('nan')):>12.0f}{starved:>6}"
              f"{gaps.get('max', 0.0):>12.0f}")
    held = capacity(levels, p95_ms, gap_ms)
    print(f"capacity: {held} concurrent session(s) at client voice to voice p95 <= "
          f"{p95_ms:.0f} ms with no playback gap over {gap_ms:.0f} ms")
    return held


def critical_path(level: dict) -> dict[str, float]:
    """Voice to voice (server, p50) split where its stages hand over, each counted from
    the last voiced audio: pause + STT + prompt, then first token + first clause, then
    TTS + send. The pieces add up to the p50 of ``voice_to_voice_ms``."""
    points = [("to the LLM request (pause, STT, prompt)", "llm_start_ms"),
              ("to the first text chunk (first token, clause)", "first_chunk_ms"),
              ("to the first audio sent (TTS)", "voice_to_voice_ms")]
    out, previous = {}, 0.0
    for label, key in points:
        if key in level:
            value = max(level[key]["p50"], previous)
            out[label] = value - previous
            previous = value
    return out


def plot(levels: dict[int, dict], out: Path) -> None:
    from bench import plots

    series = {"voice-to-voice (client)": [
        (n, Summary.of(level["client_v2v_ms"]["values"])) for n, level in levels.items()
        if "client_v2v_ms" in level]}
    plots.latency_vs_concurrency(series, out / "voice-latency.png",
                                 title="Voice-to-voice latency")
    plots.stage_breakdown({f"{n} session(s)": critical_path(level)
                           for n, level in levels.items()}, out / "voice-stages.png",
                          title="Voice to voice, p50, by stage")
