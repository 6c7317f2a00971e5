"""Phonemes and ids of Piper voices equal piper-tts's own on a sentence set."""

from __future__ import annotations

import json

import pytest

from export.tts.piper import voice_entry
from export.tts.runtime import espeak
from export.tts.runtime.espeak import _terminator_from_text
from export.tts.runtime.normalize import normalize
from export.tts.runtime.voices import Voice, VoiceConfig
from tests.support.tts import joe_voice_path

pytestmark = pytest.mark.realweights

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello world, this is Joe speaking.",
    "What? No; yes: maybe... ok",
    "Mr. Jones went home.",
    '"Hello," she said. (Really?) Yes!',
    "Well... I don't know!? Maybe.",
    "Naïve résumé — façade; coöperate.",
    "It's a beautiful day in the neighborhood, isn't it?",
    "Wait - what did you say?!",
    "The café's crème brûlée costs too much.",
    "Line one\nLine two",
    "Read the README, then run make test: it takes a minute.",
    "I live at 221B Baker Street.",
    "Hmm…",
]
NORMALISED = ["It costs $12.50 at 3:30 pm on 2024-03-15.", "About 50% of 1,234 people came.",
              "In 1984, the 21st runner finished at 10:00."]


@pytest.fixture(scope="module")
def joe() -> Voice:
    model = joe_voice_path()
    entry = voice_entry(model, model.with_name(model.name + ".json"))
    return Voice(VoiceConfig.from_json(entry), model.parent)


@pytest.fixture(scope="module")
def piper_voice():  # type: ignore[no-untyped-def]
    from piper import PiperVoice

    return PiperVoice.load(joe_voice_path())


@pytest.mark.parametrize("text", SENTENCES + [normalize(t, "en") for t in NORMALISED])
def test_phoneme_ids_equal_piper(joe: Voice, piper_voice, text: str) -> None:  # type: ignore[no-untyped-def]
    theirs = piper_voice.phonemize(text)
    ours = joe.phonemes(text)
    assert ours == theirs
    assert [joe.phoneme_ids(p)[0] for p in ours] == [piper_voice.phonemes_to_ids(p)
                                                      for p in theirs]


def test_piper_bundled_espeak_is_used() -> None:
    described = espeak.describe()
    assert described["espeak_version"].startswith("1.52")
    assert "piper" in described["espeak_library"]


def test_ids_frame_each_phoneme_with_pad_between_bos_and_eos(joe: Voice) -> None:
    id_map = json.loads(joe_voice_path().with_suffix(".onnx.json").read_text())["phoneme_id_map"]
    ids, dropped = joe.phoneme_ids(["h", "ə", "☃", "."])
    assert dropped == ["☃"]
    assert ids == [*id_map["^"], *id_map["_"], *id_map["h"], *id_map["_"], *id_map["ə"],
                   *id_map["_"], *id_map["."], *id_map["_"], *id_map["$"]]


@pytest.mark.parametrize(("consumed", "last", "expected"), [
    ("Hello world,", False, (",", False)), ("It is.", False, (".", True)),
    ("Why?", False, ("?", True)), ('"Stop!"', False, ("!", True)),
    ("Really!?", False, ("!", True)), ("Well...", False, ("", False)),
    ("Wait —", False, (";", False)), ("the end", True, ("", True)),
    ("안녕하세요。", False, (".", True)),
])
def test_terminators_read_from_text_for_the_stock_library(consumed: str, last: bool,
                                                          expected: tuple[str, bool]) -> None:
    assert _terminator_from_text(consumed, last) == expected
