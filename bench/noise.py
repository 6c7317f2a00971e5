"""``voicechat bench noise``: what realtime input noise reduction (DeepFilterNet 3, the
``audio.input.noise_reduction`` stage) buys and costs.

* WER of Whisper base (faster-whisper int8 on the served stt version's own CTranslate2
  weights, greedy) on espeak-ng sentences mixed with white, pink and babble noise at
  ``--snr`` dB, without denoising and through the stage (near_field, far_field), fed in
  20 ms chunks at 16 kHz as a session would.
* False speech starts: the session's VAD (Silero, server_vad defaults) over
  ``--noise-seconds`` of noise alone (white, pink, babble, hum) and over seeded runs of
  knocks, with and without denoising.
* Cost: CPU seconds per second of audio of the stage (resampling included) and of the
  model alone; the latency it adds (the model's lookahead plus what the hop and the
  resamplers hold back per 20 ms chunk); and, for the alternative, onnxruntime on the
  package's three ONNX graphs (network only, no STFT or features), one-shot and
  re-run over a context window per 10 ms hop (the graphs expose no recurrent state).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

RATE = 16_000
CHUNK_MS = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--snr", default="0,5,10", help="SNRs in dB, comma-separated")
    parser.add_argument("--noises", default="white,pink,babble",
                        help="noises for WER, comma-separated (white, pink, babble)")
    parser.add_argument("--sentences", type=int, default=10, help="test sentences (of 14)")
    parser.add_argument("--noise-seconds", type=float, default=30.0,
                        help="noise-only audio per noise for the false speech starts")
    parser.add_argument("--knock-runs", type=int, default=20,
                        help="seeded 10 s runs of 20 knocks for the false speech starts")
    parser.add_argument("--no-wer", action="store_true",
                        help="only the false speech starts and the cost (no Whisper)")
    parser.add_argument("--json", dest="json_path", default="", help="write the figures here")


def _speech(count: int) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
    """Test sentences, and six other sentences for babble (no test words in the noise)."""
    from export.stt import testspeech

    speaker = testspeech.espeak_speaker("en-us", 150)
    sentences = testspeech.ENGLISH[:count]
    talkers = [speaker(text) for text in testspeech.ENGLISH[-6:]]
    pad = np.zeros(RATE // 2, np.float32)
    return list(sentences), [np.concatenate([pad, speaker(t), pad]) for t in sentences], \
        talkers


def _noise(kind: str, n: int, rng: np.random.Generator, talkers: list[np.ndarray]) -> np.ndarray:
    from bench import noises

    if kind == "babble":
        return noises.babble(n, rng, talkers)
    if kind == "hum":
        return noises.hum(n, RATE, rng)
    return {"white": noises.white, "pink": noises.pink}[kind](n, rng)


def _denoised(audio: np.ndarray, kind: str) -> np.ndarray:
    from orchestrator.realtime.turns.deepfilter import DeepFilter
    from orchestrator.realtime.turns.denoise import Denoiser

    denoiser = Denoiser(DeepFilter(), kind, RATE)  # type: ignore[arg-type]
    step = RATE * CHUNK_MS // 1000
    try:
        out = [denoiser(audio[i:i + step], RATE) for i in range(0, audio.size, step)]
        # the tail still held: push the lookahead out with silence, as later audio would
        out.append(denoiser(np.zeros(RATE // 10, np.float32), RATE))
    finally:
        denoiser.close()
    return np.concatenate(out)


def _whisper(settings) -> object:  # type: ignore[no-untyped-def]
    from faster_whisper import WhisperModel

    from bench.stt import _ct2_directory
    from export.repository import ModelRepository

    repository = ModelRepository(settings.model_repository)
    for version in repository.versions("stt"):
        source = repository.manifest("stt", version).source
        if source.get("kind") == "ctranslate2":
            return WhisperModel(_ct2_directory(source, Path(tempfile.mkdtemp())),
                                device="cpu", compute_type="int8", cpu_threads=2)
    raise SystemExit("no Whisper (CTranslate2) stt version is exported (make models)")


def _transcribe(model, clip: np.ndarray) -> str:  # type: ignore[no-untyped-def]
    segments, _ = model.transcribe(clip, beam_size=1, temperature=0.0, language="en",
                                   without_timestamps=True, vad_filter=False)
    return "".join(s.text for s in segments).strip()


def _speech_starts(audio: np.ndarray) -> int:
    from orchestrator.realtime.turns.vad import SpeechStart, TurnDetector, load_model

    detector = TurnDetector(load_model().stream(), threshold=0.5, prefix_padding_ms=300,
                            silence_duration_ms=500, max_turn_ms=30_000, pause_ms=(100,))
    step = RATE * CHUNK_MS // 1000
    return sum(isinstance(e, SpeechStart) for i in range(0, audio.size, step)
               for e in detector.feed(audio[i:i + step]))


def _knock_starts(runs: int) -> dict:
    """Knocks are the one synthetic noise Silero sometimes takes for speech: ``runs``
    seeded 10 s runs of 20 (the integration test's is seed 0)."""
    from bench.noises import knocks

    entry: dict = {"noise": "knocks", "seconds": 10.0 * runs, "off": 0, "near_field": 0,
                   "far_field": 0}
    for seed in range(runs):
        noise = 0.2 * knocks(10 * RATE, RATE, np.random.default_rng(seed), 20)
        entry["off"] += _speech_starts(noise)
        for mode in ("near_field", "far_field"):
            entry[mode] += _speech_starts(_denoised(noise, mode))
    return entry


def _stage_cost(seconds: float = 10.0) -> dict:
    """CPU per second of audio and the latency the stage adds, 20 ms chunks at 24 kHz
    (the sessions' default rate)."""
    from orchestrator.realtime.turns.deepfilter import HOP, DeepFilter
    from orchestrator.realtime.turns.denoise import Denoiser

    rate, rng = 24_000, np.random.default_rng(0)
    audio = (0.05 * rng.standard_normal(int(seconds * rate))).astype(np.float32)
    step = rate * CHUNK_MS // 1000
    denoiser = Denoiser(DeepFilter(), "near_field", rate)
    held, fed, out_n, per_chunk = [], 0, 0, []
    cpu = time.process_time()
    for i in range(0, audio.size, step):
        started = time.perf_counter()
        out_n += denoiser(audio[i:i + step], rate).size
        per_chunk.append(time.perf_counter() - started)
        fed += step
        held.append((fed - out_n) * 1000 / rate)
    stage_cpu = (time.process_time() - cpu) / seconds
    denoiser.close()
    model = DeepFilter()
    hops = np.zeros(int(seconds * 48_000) // HOP * HOP, np.float32)
    hops[:] = 0.05 * rng.standard_normal(hops.size)
    cpu = time.process_time()
    model.process(hops)
    model_cpu = (time.process_time() - cpu) / seconds
    model.close()
    lookahead_ms = 30.0  # 2 frames of lookahead + the STFT's overlap (measured: 1440 samples)
    return {"stage_cpu_s_per_audio_s": round(stage_cpu, 4),
            "model_cpu_s_per_audio_s": round(model_cpu, 4),
            "chunk_wall_ms_p50": round(float(np.percentile(per_chunk, 50)) * 1000, 3),
            "chunk_wall_ms_p95": round(float(np.percentile(per_chunk, 95)) * 1000, 3),
            "lookahead_ms": lookahead_ms,
            "held_ms_mean": round(float(np.mean(held[10:])), 2),
            "held_ms_max": round(float(np.max(held[10:])), 2),
            "added_latency_ms_mean": round(lookahead_ms + float(np.mean(held[10:])), 2)}


def _onnx_cost(window_frames: int = 50) -> dict:
    """onnxruntime on the three graphs (random features of the right shapes)."""
    import onnxruntime

    from orchestrator.realtime.turns.deepfilter import default_model_path

    scratch = Path(tempfile.mkdtemp())
    with tarfile.open(default_model_path()) as tar:
        tar.extractall(scratch, filter="data")
    graphs = {p.stem: p for p in scratch.rglob("*.onnx")}
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    sessions = {name: onnxruntime.InferenceSession(str(graphs[name]), options,
                                                   providers=["CPUExecutionProvider"])
                for name in ("enc", "erb_dec", "df_dec")}

    def run(frames: int) -> None:
        rng = np.random.default_rng(0)
        enc = sessions["enc"].run(None, {
            "feat_erb": rng.standard_normal((1, 1, frames, 32)).astype(np.float32),
            "feat_spec": rng.standard_normal((1, 2, frames, 96)).astype(np.float32)})
        e0, e1, e2, e3, emb, c0, _ = enc
        sessions["erb_dec"].run(None, {"emb": emb, "e3": e3, "e2": e2, "e1": e1, "e0": e0})
        sessions["df_dec"].run(None, {"emb": emb, "c0": c0})

    run(100)  # warm-up
    cpu = time.process_time()
    for _ in range(5):
        run(100)  # one second of hops at once
    one_shot = (time.process_time() - cpu) / 5
    cpu = time.process_time()
    for _ in range(50):
        run(window_frames)
    per_hop = (time.process_time() - cpu) / 50
    return {"onnx_one_shot_cpu_s_per_audio_s": round(one_shot, 4),
            "onnx_streaming_window_frames": window_frames,
            "onnx_streaming_cpu_s_per_audio_s": round(per_hop * 100, 3),
            "onnx_streaming_ms_per_hop": round(per_hop * 1000, 3)}


def run(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    from bench.noises import mix
    from bench.results import machine_info
    from bench.wer import wer

    logging.getLogger("faster_whisper").setLevel(logging.WARNING)  # one line per clip
    snrs = [float(s) for s in args.snr.split(",") if s]
    kinds = [k for k in args.noises.split(",") if k]
    references, clips, talkers = _speech(args.sentences)
    rng = np.random.default_rng(42)
    rows: list[dict] = []
    if not args.no_wer:
        model = _whisper(settings)
        rows.append({"noise": "clean", "snr_db": None, "wer_off": round(
            wer(references, [_transcribe(model, c) for c in clips]), 4)})
        print(f"clean: WER {rows[0]['wer_off']:.3f}", flush=True)
    for kind in [] if args.no_wer else kinds:
        for snr in snrs:
            noisy = [mix(c, _noise(kind, c.size, rng, talkers), snr) for c in clips]
            row: dict = {"noise": kind, "snr_db": snr}
            row["wer_off"] = round(wer(references, [_transcribe(model, c) for c in noisy]), 4)
            for mode in ("near_field", "far_field"):
                texts = [_transcribe(model, _denoised(c, mode)) for c in noisy]
                row[f"wer_{mode}"] = round(wer(references, texts), 4)
            rows.append(row)
            print(row, flush=True)
    starts = []
    n = int(args.noise_seconds * RATE)
    for kind in ("white", "pink", "babble", "hum"):
        noise = 0.1 * _noise(kind, n, rng, talkers)
        entry = {"noise": kind, "seconds": args.noise_seconds, "off": _speech_starts(noise)}
        for mode in ("near_field", "far_field"):
            entry[mode] = _speech_starts(_denoised(noise, mode))
        starts.append(entry)
        print("speech starts on noise alone:", entry, flush=True)
    starts.append(_knock_starts(args.knock_runs))
    print("speech starts on knocks:", starts[-1], flush=True)
    cost = {**_stage_cost(), **_onnx_cost()}
    print("cost:", cost, flush=True)
    result = {"machine": machine_info(), "platform": platform.platform(),
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "wer": rows, "false_speech_starts": starts, "cost": cost}
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0
