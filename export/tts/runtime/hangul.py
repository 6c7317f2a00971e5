"""Korean spelling -> Korean pronunciation, written back in Hangul (표준 발음법, the rules
a reader applies between syllables), so the phonemiser reads what a speaker says.

espeak-ng's ``ko`` voice reads most syllables as spelt: "갑니다" comes out as *kap-nida*,
"학교" as *hak-kjo* with a lax *k*, "읽다" as *ikt-a*. Kokoro has never heard Korean, so
each misread consonant is heard back as another word. The rules below rewrite each
boundary between two Hangul syllables of a word (a run of syllables without a space):

* liaison (연음): a coda moves onto a following vowel (먹어 -> 머거; of a double coda, the
  second letter: 읽어 -> 일거, 값이 -> 갑씨), with palatalisation (같이 -> 가치, 굳이 -> 구지);
* ㅎ: aspiration with a neighbouring stop (좋고 -> 조코, 축하 -> 추카), silent before a vowel
  (좋아 -> 조아, 많이 -> 마니);
* coda neutralisation to the seven final sounds, double codas simplified (닭 -> 닥);
* tensification after a stop coda (학교 -> 학꾜, 먹다 -> 먹따);
* nasalisation (갑니다 -> 감니다, 있는 -> 인는, 국립 -> 궁닙) and ㄹ as ㄴ after a nasal
  (종로 -> 종노);
* lateralisation (신라 -> 실라, 설날 -> 설랄);
* 의 after a consonant is 이 (희망 -> 히망), and inside or at the end of a word 이 / 에.

What needs a morphological analysis (tensification after a verb stem's ㄴ/ㅁ, 사이시옷,
ㄴ insertion as in 색연필) is left as spelt. Text other than Hangul passes unchanged.
"""

from __future__ import annotations

import re

INITIALS = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
MEDIALS = "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ"
FINALS = ["", "ㄱ", "ㄲ", "ㄳ", "ㄴ", "ㄵ", "ㄶ", "ㄷ", "ㄹ", "ㄺ", "ㄻ", "ㄼ", "ㄽ", "ㄾ", "ㄿ",
          "ㅀ", "ㅁ", "ㅂ", "ㅄ", "ㅅ", "ㅆ", "ㅇ", "ㅈ", "ㅊ", "ㅋ", "ㅌ", "ㅍ", "ㅎ"]
FIRST, LAST = 0xAC00, 0xD7A3
_WORD = re.compile("[\uac00-\ud7a3]+")

# A double coda before a vowel: (what stays, what moves on).
SPLIT = {"ㄳ": ("ㄱ", "ㅆ"), "ㄵ": ("ㄴ", "ㅈ"), "ㄶ": ("ㄴ", "ㅎ"), "ㄺ": ("ㄹ", "ㄱ"),
         "ㄻ": ("ㄹ", "ㅁ"), "ㄼ": ("ㄹ", "ㅂ"), "ㄽ": ("ㄹ", "ㅆ"), "ㄾ": ("ㄹ", "ㅌ"),
         "ㄿ": ("ㄹ", "ㅍ"), "ㅀ": ("ㄹ", "ㅎ"), "ㅄ": ("ㅂ", "ㅆ")}
# The seven final sounds: what each coda is said as before a consonant or a pause.
NEUTRAL = {"ㄲ": "ㄱ", "ㅋ": "ㄱ", "ㄳ": "ㄱ", "ㄺ": "ㄱ", "ㅅ": "ㄷ", "ㅆ": "ㄷ", "ㅈ": "ㄷ",
           "ㅊ": "ㄷ", "ㅌ": "ㄷ", "ㅎ": "ㄷ", "ㅍ": "ㅂ", "ㄿ": "ㅂ", "ㅄ": "ㅂ", "ㄵ": "ㄴ",
           "ㄶ": "ㄴ", "ㄻ": "ㅁ", "ㄼ": "ㄹ", "ㄽ": "ㄹ", "ㄾ": "ㄹ", "ㅀ": "ㄹ"}
ASPIRATED = {"ㄱ": "ㅋ", "ㄷ": "ㅌ", "ㅂ": "ㅍ", "ㅈ": "ㅊ"}
TENSE = {"ㄱ": "ㄲ", "ㄷ": "ㄸ", "ㅂ": "ㅃ", "ㅅ": "ㅆ", "ㅈ": "ㅉ"}
STOP_NASAL = {"ㄱ": "ㅇ", "ㄷ": "ㄴ", "ㅂ": "ㅁ"}
# A coda that aspirates a following ㅎ: (what stays, the aspirated onset).
BEFORE_H = {"ㄱ": ("", "ㅋ"), "ㄲ": ("", "ㅋ"), "ㄷ": ("", "ㅌ"), "ㅂ": ("", "ㅍ"),
            "ㅈ": ("", "ㅊ"), "ㅅ": ("", "ㅌ"), "ㅊ": ("", "ㅌ"), "ㄺ": ("ㄹ", "ㅋ"),
            "ㄼ": ("ㄹ", "ㅍ"), "ㄵ": ("ㄴ", "ㅊ")}
PALATAL = {"ㄷ": "ㅈ", "ㅌ": "ㅊ"}


def split_syllable(syllable: str) -> list[str]:
    index = ord(syllable) - FIRST
    return [INITIALS[index // 588], MEDIALS[index % 588 // 28], FINALS[index % 28]]


def join_syllable(initial: str, medial: str, final: str) -> str:
    return chr(FIRST + (INITIALS.index(initial) * 21 + MEDIALS.index(medial)) * 28
               + FINALS.index(final))


def pronounce(text: str) -> str:
    """``text`` with each Hangul word rewritten as it is pronounced."""
    return _WORD.sub(lambda m: _word(m[0]), text)


def _word(word: str) -> str:
    syllables = [split_syllable(s) for s in word]
    for i in range(len(syllables) - 1):
        _boundary(syllables[i], syllables[i + 1])
    last = syllables[-1]
    last[2] = NEUTRAL.get(last[2], last[2])
    _vowels(syllables)
    return "".join(join_syllable(*s) for s in syllables)


def _boundary(left: list[str], right: list[str]) -> None:
    """Rewrite the coda of ``left`` and the onset of ``right`` (in place)."""
    coda, onset = left[2], right[0]
    if not coda:
        return
    if coda in ("ㅎ", "ㄶ", "ㅀ"):  # ㅎ at the end of a syllable
        stays = {"ㅎ": "", "ㄶ": "ㄴ", "ㅀ": "ㄹ"}[coda]
        if onset in ASPIRATED:
            left[2], right[0] = stays, ASPIRATED[onset]
        elif onset == "ㅅ":
            left[2], right[0] = stays, "ㅆ"
        elif onset == "ㅇ":
            left[2] = stays
            if stays:  # 않아 -> 아나, 싫어 -> 시러
                left[2], right[0] = "", stays
        elif onset == "ㄴ":
            left[2] = stays or "ㄴ"
            if stays == "ㄹ":
                right[0] = "ㄹ"  # 뚫는 -> 뚤른
        else:
            left[2] = stays or "ㄷ"
        return
    if onset == "ㅇ":  # liaison
        if coda == "ㅇ":
            return
        stays, moves = SPLIT.get(coda, ("", coda))
        if right[1] == "ㅣ" and moves in PALATAL:
            moves = PALATAL[moves]
        left[2], right[0] = stays, moves
        return
    if onset == "ㅎ" and coda in BEFORE_H:
        stays, aspirated = BEFORE_H[coda]
        if right[1] == "ㅣ" and aspirated == "ㅌ":
            aspirated = "ㅊ"  # 닫히다 -> 다치다
        left[2], right[0] = stays, aspirated
        return
    if coda == "ㄺ" and onset == "ㄱ":  # 맑게 -> 말께
        left[2], right[0] = "ㄹ", "ㄲ"
        return
    coda = NEUTRAL.get(coda, coda)
    if coda in STOP_NASAL and onset == "ㄹ":  # 국립 -> 궁닙
        coda, onset = STOP_NASAL[coda], "ㄴ"
    elif coda in ("ㅁ", "ㅇ") and onset == "ㄹ":  # 종로 -> 종노
        onset = "ㄴ"
    elif coda in STOP_NASAL and onset in ("ㄴ", "ㅁ"):  # 갑니다 -> 감니다
        coda = STOP_NASAL[coda]
    elif coda in STOP_NASAL and onset in TENSE:  # 학교 -> 학꾜
        onset = TENSE[onset]
    elif (coda, onset) in (("ㄴ", "ㄹ"), ("ㄹ", "ㄴ")):  # 신라 -> 실라, 설날 -> 설랄
        coda = onset = "ㄹ"
    left[2], right[0] = coda, onset


def _vowels(syllables: list[str]) -> None:
    """의 after a consonant is 이; inside a word 이, at the end of a word of three or
    more syllables (the possessive: 서울의, 우리의) 에, not in 회의 or 주의; ㅖ after a
    consonant other than ㅇ/ㄹ is ㅔ (시계 -> 시게)."""
    for i, syllable in enumerate(syllables):
        if syllable[1] == "ㅢ":
            if syllable[0] != "ㅇ":
                syllable[1] = "ㅣ"
            elif i > 0:
                syllable[1] = "ㅔ" if i == len(syllables) - 1 >= 2 else "ㅣ"
        elif syllable[1] == "ㅖ" and syllable[0] not in ("ㅇ", "ㄹ"):
            syllable[1] = "ㅔ"
