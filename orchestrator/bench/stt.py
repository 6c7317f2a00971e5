"""``voicechat bench stt``: real-time factor of the served STT against openai-whisper
(PyTorch, in process) and faster-whisper (when installed), on the same audio and weights.

RTF = processing seconds / audio seconds (lower is faster). The PyTorch model is loaded
from the source recorded in the served version's manifest, so all paths decode the same
weights; transcripts are compared word for word.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import shutil
import subprocess
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

DEFAULT_UTTERANCES = ["what time does the pharmacy close today",
                      "how many people live in london",
                      "please call me back tomorrow morning",
                      "the meeting has been moved to thursday afternoon"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--audio", help="16 kHz mono 16-bit WAV (default: espeak-ng speech)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per path (best of)")
    parser.add_argument("--version", default="", help="served stt version (default: latest)")
    parser.add_argument("--language", default=None, help="language (default: detected)")


def _speech(directory: Path) -> np.ndarray:
    if not shutil.which("espeak-ng") or not shutil.which("sox"):
        raise SystemExit("espeak-ng and sox are needed for the default audio (or pass --audio)")
    pieces = []
    for i, text in enumerate(DEFAULT_UTTERANCES):
        raw, wav = directory / f"{i}.raw.wav", directory / f"{i}.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "140", "-w", str(raw), text],
                       check=True)
        subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(wav)],
                       check=True)
        pieces += [_read_wav(wav), np.zeros(8000, np.float32)]
    return np.concatenate(pieces)


def _read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as wav:
        if wav.getframerate() != 16_000 or wav.getnchannels() != 1:
            raise SystemExit(f"{path}: need 16 kHz mono WAV")
        return np.frombuffer(wav.readframes(wav.getnframes()), np.int16).astype(np.float32) \
            / 32768.0


def _best(fn, repeat: int) -> tuple[float, str]:  # type: ignore[no-untyped-def]
    text, best = "", float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        text = fn()
        best = min(best, time.perf_counter() - started)
    return best, text.strip()


async def _served(settings, audio: np.ndarray, args) -> tuple[float, str, str]:  # type: ignore[no-untyped-def]
    from orchestrator.inference.client import TritonClient
    from orchestrator.speech.stt import SpeechToText

    client = TritonClient(settings.triton_url, timeout_s=600)
    try:
        stt = SpeechToText(client)
        warm = await stt.transcribe(audio[:16_000], language=args.language, version=args.version)
        best, text = float("inf"), ""
        for _ in range(args.repeat):
            started = time.perf_counter()
            result = await stt.transcribe(audio, language=args.language, version=args.version)
            best = min(best, time.perf_counter() - started)
            text = result.text
        return best, text.strip(), warm.model_version
    finally:
        await client.close()


def run(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]

    from export.repository import ModelRepository

    with tempfile.TemporaryDirectory() as tmp:
        audio = _read_wav(Path(args.audio)) if args.audio else _speech(Path(tmp))
    seconds = audio.size / 16_000
    from orchestrator.inference.embedded import triton_for

    with triton_for(settings, {"stt"}) as served:
        served_s, served_text, version = asyncio.run(_served(served, audio, args))
    manifest = ModelRepository(settings.model_repository).manifest("stt", int(version))
    rows = [("served (Triton, ONNX Runtime)", served_s, served_text)]

    import torch
    import whisper

    from export.stt.sources import load_source

    source = manifest.source
    model = load_source(source.get("path") or source["name"], source.get("parts", ())).model
    options = {"temperature": 0.0, "fp16": False, "language": args.language}
    whisper.transcribe(model, audio[:16_000], **options)  # warm-up
    torch_s, torch_text = _best(lambda: whisper.transcribe(model, audio, **options)["text"],
                                args.repeat)
    rows.append(("openai-whisper (PyTorch, in process)", torch_s, torch_text))
    try:
        from faster_whisper import WhisperModel
    except ImportError:
        rows.append(("faster-whisper", float("nan"), "(not installed)"))
    else:
        fw = WhisperModel(_ct2_directory(source, Path(tempfile.mkdtemp())), device="cpu",
                          compute_type="float32")

        def fw_run() -> str:
            segments, _ = fw.transcribe(audio, beam_size=1, temperature=0.0,
                                        language=args.language)
            return "".join(s.text for s in segments)

        fw_s, fw_text = _best(fw_run, args.repeat)
        rows.append(("faster-whisper (CTranslate2)", fw_s, fw_text))

    print(f"machine: {platform.machine()}, {_cpus()} CPU cores, torch threads "
          f"{torch.get_num_threads()}; audio {seconds:.1f} s; stt version {version} "
          f"({json.dumps(manifest.dimensions.get('n_audio_layer'))} encoder layers, "
          f"{manifest.source.get('kind')}); best of {args.repeat}")
    print(f"{'path':<40} {'seconds':>8} {'RTF':>7}  same transcript as served")
    for name, elapsed, text in rows:
        same = "-" if text.startswith("(") else ("yes" if text == served_text else "NO")
        print(f"{name:<40} {elapsed:>8.2f} {elapsed / seconds:>7.3f}  {same}")
    for name, _, text in rows:
        print(f"  {name}: {text!r}")
    return 0


def _ct2_directory(source: dict, scratch: Path) -> str:
    """A directory faster-whisper can open: split model.bin parts are joined into one."""
    path = Path(source["path"])
    if source.get("kind") != "ctranslate2":
        raise SystemExit("faster-whisper needs a CTranslate2 source in the stt manifest")
    if (path / "model.bin").is_file():
        return str(path)
    for extra in ("config.json", "tokenizer.json", "vocabulary.txt", "vocabulary.json"):
        if (path / extra).is_file():
            shutil.copyfile(path / extra, scratch / extra)
    with open(scratch / "model.bin", "wb") as out:
        for part in source["parts"]:
            out.write(Path(part).read_bytes())
    return str(scratch)


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
