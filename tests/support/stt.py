"""Whisper test helpers: a tiny random Whisper, espeak-ng speech, exports into Triton."""

from __future__ import annotations

import json
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000
SITE = Path(__import__("numpy").__file__).parent.parent
UTTERANCES = ["what time does the pharmacy close today", "how many people live in london",
              "please call me back tomorrow morning"]


def tiny_whisper_checkpoint(path: Path, seed: int = 0) -> Path:
    """A randomly initialised multilingual Whisper of the real architecture, saved as .pt."""
    import torch
    from whisper.model import ModelDimensions, Whisper

    torch.manual_seed(seed)
    dims = ModelDimensions(n_mels=80, n_audio_ctx=1500, n_audio_state=64, n_audio_head=2,
                           n_audio_layer=1, n_vocab=51865, n_text_ctx=448, n_text_state=64,
                           n_text_head=2, n_text_layer=2)
    model = Whisper(dims)
    with torch.no_grad():  # whisper leaves this parameter uninitialised (torch.empty)
        model.decoder.positional_embedding.normal_(0.0, 0.5)
    torch.save({"dims": vars(dims), "model_state_dict": model.state_dict()}, path)
    return path


def load_whisper(path: Path):  # type: ignore[no-untyped-def]
    from export.stt.sources import load_source

    return load_source(str(path)).model


def export_version(source: str, repository: Path, *extra: str) -> int:
    """Run the real export CLI; returns the version it wrote."""
    from export.cli import main

    before = {p.name for p in (repository / "stt").glob("[0-9]*")} \
        if (repository / "stt").is_dir() else set()
    assert main(["stt", "--source", source, "--repo", str(repository), *extra]) == 0
    after = {p.name for p in (repository / "stt").glob("[0-9]*")}
    (new,) = after - before
    return int(new)


def serve_versions(server, versions: list[int]) -> None:  # type: ignore[no-untyped-def]
    """(Re)load ``stt`` serving exactly ``versions``."""
    from export.specs.stt import SPEC
    from tests.support.triton import load

    load(server, "stt", config=json.dumps(SPEC.config_json(versions=versions)))


def espeak(text: str, directory: Path) -> Path:
    """``text`` spoken by espeak-ng as 16 kHz mono 16-bit WAV."""
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        import pytest

        pytest.skip("espeak-ng and sox are needed (make system-deps)")
    raw = directory / "espeak-raw.wav"
    out = directory / (text.replace(" ", "_")[:60] + ".wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "140", "-w", str(raw), text], check=True)
    subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(out)],
                   check=True)
    return out


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as wav:
        frames = wav.readframes(wav.getnframes())
    return np.frombuffer(frames, np.int16).astype(np.float32) / 32768.0


def encode(audio: np.ndarray, container: str, codec: str, rate: int = SAMPLE_RATE) -> bytes:
    """Encode float audio into ``container`` with PyAV (as a client would upload)."""
    import io

    import av

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.layout = "mono"
        frame_size = stream.codec_context.frame_size or 1024
        pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16) if "s16" in \
            _sample_format(stream) else audio.astype(np.float32)
        fmt = "s16" if pcm.dtype == np.int16 else "flt"
        if stream.codec_context.format.name.endswith("p"):
            fmt += "p"
        for start in range(0, pcm.size, frame_size):
            chunk = pcm[start:start + frame_size]
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format=fmt, layout="mono")
            frame.sample_rate = rate
            frame.pts = start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


def _sample_format(stream) -> str:  # type: ignore[no-untyped-def]
    return stream.codec_context.format.name


def ct2_dir(package: str) -> Path:
    import importlib

    module = importlib.import_module(package)
    root = Path(module.__file__).parent
    return root / ("model" if (root / "model").is_dir() else "data")
