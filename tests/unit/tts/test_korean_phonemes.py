"""Korean pronunciation rules (Hangul -> Hangul as said) and Korean -> Kokoro phonemes."""

from __future__ import annotations

import pytest

from export.tts.runtime.hangul import pronounce
from export.tts.runtime.korean import hangul_ipa, phonemes
from export.tts.runtime.normalize import normalize


@pytest.mark.parametrize(("spelt", "said"), [
    ("먹어", "머거"), ("읽어", "일거"), ("값이", "갑씨"), ("있어요", "이써요"),  # liaison
    ("같이", "가치"), ("굳이", "구지"), ("닫히다", "다치다"),  # palatalisation
    ("좋고", "조코"), ("축하", "추카"), ("입학", "이팍"), ("않다", "안타"),  # aspiration
    ("좋아", "조아"), ("많이", "마니"), ("싫어", "시러"),  # silent ㅎ
    ("학교", "학꾜"), ("먹다", "먹따"), ("맑게", "말께"),  # tensification
    ("갑니다", "감니다"), ("있는", "인는"), ("국립", "궁닙"), ("종로", "종노"),  # nasals
    ("신라", "실라"), ("설날", "설랄"),  # lateralisation
    ("닭", "닥"), ("꽃", "꼳"),  # codas
    ("희망", "히망"), ("회의", "회이"), ("우리의", "우리에"), ("시계", "시게"),  # vowels
    ("강아지", "강아지"), ("안녕하세요", "안녕하세요"),  # nothing to change
])
def test_words_are_rewritten_as_said(spelt: str, said: str) -> None:
    assert pronounce(spelt) == said


def test_other_text_and_word_boundaries_pass_unchanged() -> None:
    # Rules apply inside a word; a space is a boundary; Latin, digits and marks stay.
    assert pronounce("밥 아침, Seoul 3시!") == "밥 아침, Seoul 3시!"


@pytest.mark.parametrize(("word", "ipa"), [
    ("감니다", "kamnida"),  # lax stop voiceless at the start, voiced between vowels
    ("학꾜", "hakkjo"),  # tense = plain voiceless
    ("가치", "kaʨʰi"),  # aspirated + the glide folded into ʨ
    ("시러", "ɕiɾɔ"),  # ㅅ before i is ɕ; ㄹ between vowels a flap; ㅓ is ɔ
    ("개", "ke"),  # ㅐ is ㅔ
    ("실라", "ɕilla"),  # ㄹㄹ is ll
    ("강", "kaŋ"),
])
def test_hangul_ipa(word: str, ipa: str) -> None:
    assert hangul_ipa(word) == ipa


def test_sentence_phonemes_keep_marks_and_read_english_words() -> None:
    said = phonemes(normalize("서울은 Seoul 이에요, 정말요?", "ko"))
    assert said.startswith("sɔuɾɯn s")  # Seoul through espeak-ng's English voice
    assert "oʊl" in said and said.endswith("?")
    assert ", " in said
    assert phonemes("ㅋㅋ") == ""  # lone jamo are not words


def test_numbers_are_read_before_phonemes() -> None:
    assert phonemes(normalize("3시", "ko")) == hangul_ipa("세") + " " + hangul_ipa("시")
