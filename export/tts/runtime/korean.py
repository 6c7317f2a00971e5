"""Korean text -> phonemes in Kokoro's symbols (IPA), for voices that never heard Korean.

Kokoro-82M was trained on English, Japanese, Chinese and European languages, not Korean;
it says Korean when given Korean sounds in the IPA symbols it knows. Hangul is read
syllable by syllable after the pronunciation rules of :mod:`.hangul` (liaison,
tensification, nasalisation…), each jamo mapped to the nearest symbol Kokoro has:

* lax stops ㄱㄷㅂㅈ are voiceless at the start of a word (k t p ʨ) and voiced between
  voiced sounds (ɡ d b ʥ); aspirated ㅋㅌㅍㅊ take ``ʰ``; tense ㄲㄸㅃㅉㅆ are the plain
  voiceless stops (Kokoro has no tense mark); ㅅ/ㅆ before i or y is ɕ;
* ㄹ is a flap (ɾ) between vowels and l at the end of a syllable or after one (ll);
* codas are unreleased stops and nasals: k t p l m n ŋ;
* ㅓ is ɔ and ㅐ is e (:data:`VOWELS`).

Round trip through Whisper base over the 32 sentences of the CER test (docs/korean.md):
these rules 0.22 (0.24 with ㅓ as ʌ and ㅐ as ɛ; 0.28 with Japanese-style held
closures, ʔ, for stop codas), the same rules read by espeak-ng's Korean voice 0.32,
espeak-ng's Korean alone 0.79 (it reads 갑니다 as *kap-nida* and loses
tensification). Words in other scripts (English inside a Korean reply: "서울은 Seoul
이에요") go to espeak-ng's English voice, which Kokoro speaks natively. Punctuation
that Kokoro knows is kept (it shapes the pauses and the intonation); ``, : ;`` are
followed by a space as in Piper.
"""

from __future__ import annotations

import re

from . import espeak
from .hangul import pronounce, split_syllable

VOWELS = dict(zip("ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ",
                  ["a", "e", "ja", "je", "ɔ", "e", "jɔ", "je", "o", "wa", "we", "we", "jo",
                   "u", "wɔ", "we", "wi", "ju", "ɯ", "ɯi", "i"], strict=True))
"""ㅓ is ɔ (Kokoro's ʌ, the English vowel of "cup", is heard further from it), and ㅐ is ㅔ
as in Seoul speech today."""
LAX = {"ㄱ": ("k", "ɡ"), "ㄷ": ("t", "d"), "ㅂ": ("p", "b"), "ㅈ": ("ʨ", "ʥ")}
"""Lax stops: (at the start of a word or after a stop, between voiced sounds)."""
ONSETS = {"ㄲ": "k", "ㄸ": "t", "ㅃ": "p", "ㅉ": "ʨ", "ㅋ": "kʰ", "ㅌ": "tʰ", "ㅍ": "pʰ",
          "ㅊ": "ʨʰ", "ㅅ": "s", "ㅆ": "s", "ㄴ": "n", "ㅁ": "m", "ㅇ": "", "ㅎ": "h",
          "ㄹ": "ɾ"}
CODAS = {"": "", "ㄱ": "k", "ㄴ": "n", "ㄷ": "t", "ㄹ": "l", "ㅁ": "m", "ㅂ": "p", "ㅇ": "ŋ"}
VOICED_CODAS = ("", "ㄴ", "ㄹ", "ㅁ", "ㅇ")
Y_VOWELS = "ㅣㅑㅕㅛㅠㅒㅖ"
OTHER_LANGUAGE = "en-us"
"""espeak-ng voice for words in other scripts."""

_HANGUL_WORD = re.compile("[\uac00-\ud7a3]+")
_PIECES = re.compile(r"(?P<hangul>[\uac00-\ud7a3]+)|(?P<space>\s+)"
                     r"|(?P<mark>[.?!…,;:]+)|(?P<other>[^\s\uac00-\ud7a3.?!…,;:]+)")
_LANGUAGE_FLAGS = re.compile(r"\([^)]+\)")
_JAMO = re.compile("[\u1100-\u11ff\u3130-\u318f]")  # lone jamo (ㅋㅋ): not words
PAUSE_MARKS = {",": ", ", ";": "; ", ":": ": ", "…": "… "}


def phonemes(text: str) -> str:
    """One sentence (already normalised: numbers as words) as a phoneme string."""
    text = pronounce(_JAMO.sub("", text))
    out: list[str] = []
    for piece in _PIECES.finditer(text):
        kind, value = piece.lastgroup, piece.group()
        if kind == "hangul":
            out.append(hangul_ipa(value))
        elif kind == "space":
            out.append(" ")
        elif kind == "mark":
            out.append(PAUSE_MARKS.get(value[0], value[0]))
        else:
            out.append(_other_script(value))
    return re.sub(r" {2,}", " ", "".join(out)).strip()


def hangul_ipa(word: str) -> str:
    """IPA of one word of Hangul syllables as pronounced (:func:`.hangul.pronounce` first)."""
    out, voiced_before, coda_before = [], False, ""
    for syllable in word:
        initial, medial, final = split_syllable(syllable)
        if initial in LAX:
            onset = LAX[initial][1 if voiced_before else 0]
        elif initial == "ㄹ":
            onset = "l" if coda_before == "ㄹ" else "ɾ"
        else:
            onset = ONSETS[initial]
        vowel = VOWELS[medial]
        if initial in ("ㅅ", "ㅆ") and medial in Y_VOWELS:
            onset = "ɕ"
        if onset in ("ɕ", "ʨ", "ʥ", "ʨʰ") and vowel.startswith("j"):
            vowel = vowel[1:]  # 져 -> 저: the glide is in the consonant
        out.append(onset + vowel + CODAS.get(final, ""))
        coda_before, voiced_before = final, final in VOICED_CODAS
    return "".join(out)


def _other_script(text: str) -> str:
    """Latin (or any non-Hangul) words through espeak-ng's English voice."""
    spoken = []
    for phones, terminator, _end in espeak.clauses(text, OTHER_LANGUAGE):
        spoken.append(_LANGUAGE_FLAGS.sub("", phones) + terminator)
    return " ".join(p for p in spoken if p)


def is_korean(text: str) -> bool:
    return bool(_HANGUL_WORD.search(text))
