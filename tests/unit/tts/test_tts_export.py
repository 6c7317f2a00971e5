"""TTS export: a tiny random VitsModel exported at test time matches PyTorch; the
version's layout, voices.json and manifest; validation and parity failures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from export.errors import ParityError, SourceError
from export.repository import ModelRepository
from tests.support.tts import ENGLISH_CHARACTERS, build_tiny_vits, export_voices, joe_voice_path


@pytest.fixture(scope="module")
def tiny_vits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_vits(tmp_path_factory.mktemp("vits") / "tiny-en", ENGLISH_CHARACTERS)


@pytest.fixture(scope="module")
def tiny_vits_multi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_vits(tmp_path_factory.mktemp("vits") / "tiny-multi", ENGLISH_CHARACTERS,
                           num_speakers=3, seed=1)


def pytorch_waveform(directory: Path, text: str, speaker: int | None = None
                     ) -> tuple[list[int], np.ndarray]:
    import torch
    from transformers import VitsModel, VitsTokenizer

    model = VitsModel.from_pretrained(directory).eval()
    model.noise_scale = model.noise_scale_duration = 0.0
    ids = VitsTokenizer.from_pretrained(directory)(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        kwargs = {} if speaker is None else {"speaker_id": speaker}
        return ids[0].tolist(), model(ids, **kwargs).waveform.reshape(-1).numpy()


@pytest.mark.parametrize(("fixture", "speaker"), [("tiny_vits", None), ("tiny_vits_multi", 2)])
def test_tiny_vits_served_path_matches_pytorch(request: pytest.FixtureRequest,
                                               tmp_path: Path, fixture: str,
                                               speaker: int | None) -> None:
    from export.tts.parity import load_runtime

    source = request.getfixturevalue(fixture)
    manifest = export_voices(tmp_path, [source])
    assert manifest.parity_passed
    assert {p.name for p in manifest.parity} == {f"{source.name}:onnx_vs_pytorch",
                                                 f"{source.name}:served_vs_onnxruntime"}
    text = "hello there, it's a test"
    expected_ids, expected = pytorch_waveform(source, text, speaker)
    version = tmp_path / "tts" / "1"
    runtime = load_runtime(version)
    synthesizer = runtime.Synthesizer(version)
    name = source.name + ("" if speaker is None else f"#{speaker}")
    plan = synthesizer.plan(text, voice=name, noise_scale=0.0, noise_w=0.0)
    assert plan.voice.text_ids(text)[0] == expected_ids  # same ids as VitsTokenizer
    chunks = list(synthesizer.chunks(plan))
    # A single-speaker voice streams in pieces (the first names the sentence); joined
    # they are PyTorch's waveform.
    assert [c.sentence for c in chunks] == [text] + [""] * (len(chunks) - 1)
    assert len(chunks) == (1 if speaker is not None else 3)
    assert {c.sample_rate for c in chunks} == {16000}
    audio = np.concatenate([c.audio for c in chunks])
    assert audio.shape == expected.shape
    assert float(np.max(np.abs(audio - np.clip(expected, -1, 1)))) < 1e-3


def test_version_layout_voices_and_manifest(tmp_path: Path, tiny_vits: Path) -> None:
    manifest = export_voices(tmp_path, [joe_voice_path(), tiny_vits],
                             default_voice="tiny-en")
    version = tmp_path / "tts" / "1"
    voices = json.loads((version / "voices.json").read_text(encoding="utf-8"))
    assert voices["default"] == "tiny-en"
    assert [v["name"] for v in voices["voices"]] == ["en_US-joe-medium", "tiny-en"]
    joe = voices["voices"][0]
    assert (joe["sample_rate"], joe["espeak_voice"], joe["phoneme_type"]) == (22050, "en-us",
                                                                              "espeak")
    for name in ("model.py", "manifest.json", "en_US-joe-medium.onnx",
                 "en_US-joe-medium.onnx.json", "tiny-en.onnx", "tts_runtime/espeak.py"):
        assert (version / name).is_file(), name
    assert (tmp_path / "tts" / "config.pbtxt").is_file()
    assert manifest.source["voices"]["en_US-joe-medium"]["sha256"]["en_US-joe-medium.onnx"]
    assert manifest.dimensions["tiny-en"]["phoneme_type"] == "characters"
    assert manifest.extra["espeak_version"].startswith("1.52")
    figures = {p.name: p for p in manifest.parity}
    assert figures["en_US-joe-medium:phoneme_ids_vs_piper"].value == 0
    assert figures["en_US-joe-medium:served_vs_onnxruntime"].value <= 1e-4


def test_parity_failure_fails_the_export_and_leaves_nothing(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from export.tts import parity

    monkeypatch.setattr(parity, "AUDIO_TOLERANCE", -1.0)
    with pytest.raises(ParityError, match="served_vs_onnxruntime"):
        export_voices(tmp_path, [joe_voice_path()])
    assert ModelRepository(tmp_path).versions("tts") == []
    assert not [p for p in (tmp_path / "tts").iterdir() if p.name != "config.pbtxt"]


@pytest.mark.parametrize(("change", "message"), [
    (lambda c: c.pop("phoneme_id_map"), "phoneme_id_map must map"),
    (lambda c: c["phoneme_id_map"].pop("^"), "phoneme_id_map must map"),
    (lambda c: c.update(phoneme_type="pinyin"), "phoneme_type 'pinyin' is not supported"),
    (lambda c: c.pop("audio"), "audio.sample_rate"),
    (lambda c: c.update(num_symbols=10), "num_symbols"),
])
def test_bad_piper_configs_are_refused(tmp_path: Path, change, message: str) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "voice"
    source.mkdir()
    model = source / "bad-voice.onnx"
    model.symlink_to(joe_voice_path())
    config = json.loads(joe_voice_path().with_suffix(".onnx.json").read_text())
    change(config)
    (source / "bad-voice.onnx.json").write_text(json.dumps(config))
    with pytest.raises(SourceError, match=message):
        export_voices(tmp_path / "repo", [model])


def test_missing_config_and_unknown_default_are_refused(tmp_path: Path) -> None:
    lone = tmp_path / "lone.onnx"
    shutil.copyfile(joe_voice_path(), lone)
    with pytest.raises(SourceError, match=r"lone\.onnx\.json is missing"):
        export_voices(tmp_path / "repo", [lone])
    with pytest.raises(SourceError, match="--default-voice 'nobody'"):
        export_voices(tmp_path / "repo", [joe_voice_path()], default_voice="nobody")


def test_uroman_voice_romanises_korean_like_vits_tokenizer(tmp_path: Path) -> None:
    """MMS voices such as mms-tts-kor (is_uroman) are trained on romanised text."""
    from transformers import VitsTokenizer

    from export.tts.parity import load_runtime

    source = build_tiny_vits(tmp_path / "tiny-uroman", ENGLISH_CHARACTERS, is_uroman=True)
    manifest = export_voices(tmp_path / "repo", [source], language=["tiny-uroman=ko"])
    assert manifest.parity_passed
    version = tmp_path / "repo" / "tts" / "1"
    voices = json.loads((version / "voices.json").read_text(encoding="utf-8"))
    assert voices["voices"][0]["characters"]["uroman"] is True
    synthesizer = load_runtime(version).Synthesizer(version)
    text = "이봐 무슨 일이야"
    expected = VitsTokenizer.from_pretrained(source)(text)["input_ids"]
    ids, dropped = synthesizer.voices["tiny-uroman"].text_ids(text)
    assert ids == expected and len(ids) > 20 and dropped == []


def test_speakers_resolve_by_name_or_number(tmp_path: Path, tiny_vits_multi: Path) -> None:
    from export.tts.parity import load_runtime

    export_voices(tmp_path, [tiny_vits_multi])
    version = tmp_path / "tts" / "1"
    voices_file = version / "voices.json"
    voices = json.loads(voices_file.read_text(encoding="utf-8"))
    voices["voices"][0]["speakers"] = {"alice": 1, "bob": 2}  # as a Piper speaker_id_map
    voices_file.write_text(json.dumps(voices), encoding="utf-8")
    runtime = load_runtime(version)
    synthesizer = runtime.Synthesizer(version)
    assert synthesizer.resolve("")[1] == 0
    assert synthesizer.resolve("tiny-multi")[1] == 0
    assert synthesizer.resolve("tiny-multi#alice")[1] == 1
    assert synthesizer.resolve("tiny-multi#2")[1] == 2
    for bad, message in (("tiny-multi#3", "no speaker '3'"), ("tiny-multi#carol", "carol"),
                         ("nobody#1", "unknown voice 'nobody'")):
        with pytest.raises(runtime.BadRequest, match=message):
            synthesizer.resolve(bad)
    alice = synthesizer.plan("hello", voice="tiny-multi#alice", noise_scale=0, noise_w=0)
    bob = synthesizer.plan("hello", voice="tiny-multi#bob", noise_scale=0, noise_w=0)
    audio_alice, audio_bob = (next(synthesizer.chunks(p)).audio for p in (alice, bob))
    assert audio_alice.shape != audio_bob.shape or not np.allclose(audio_alice, audio_bob)
