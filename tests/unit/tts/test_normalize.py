"""Text normalisation: English and Korean numbers, dates, times and currency; sentences."""

from __future__ import annotations

import pytest

from export.tts.runtime.normalize import language_of, normalize
from export.tts.runtime.numbers_en import cardinal, ordinal, year
from export.tts.runtime.numbers_ko import native, sino
from export.tts.runtime.sentences import split_sentences


@pytest.mark.parametrize(("n", "words"), [
    (0, "zero"), (7, "seven"), (13, "thirteen"), (21, "twenty-one"), (100, "one hundred"),
    (115, "one hundred fifteen"), (1000, "one thousand"),
    (1234567, "one million two hundred thirty-four thousand five hundred sixty-seven"),
])
def test_english_cardinals(n: int, words: str) -> None:
    assert cardinal(n) == words


@pytest.mark.parametrize(("n", "words"), [
    (1, "first"), (2, "second"), (3, "third"), (5, "fifth"), (12, "twelfth"), (20, "twentieth"),
    (21, "twenty-first"), (42, "forty-second"), (100, "one hundredth"),
])
def test_english_ordinals(n: int, words: str) -> None:
    assert ordinal(n) == words


@pytest.mark.parametrize(("n", "words"), [
    (1984, "nineteen eighty-four"), (2000, "two thousand"), (2005, "two thousand five"),
    (2024, "twenty twenty-four"), (1900, "nineteen hundred"), (1907, "nineteen oh seven"),
])
def test_english_years(n: int, words: str) -> None:
    assert year(n) == words


@pytest.mark.parametrize(("text", "spoken"), [
    ("It costs $5.", "It costs five dollars."),
    ("$1 and $12.50", "one dollar and twelve dollars and fifty cents"),
    ("€3.01 or £2", "three euros and one cent or two pounds"),
    ("$2.5 million", "two point five million dollars"),
    ("at 3:30 pm.", "at three thirty p m."),
    ("at 7:05 a.m. today", "at seven oh five a m today"),
    ("at 10:00", "at ten o'clock"),
    ("on 2024-03-15", "on March fifteenth, twenty twenty-four"),
    ("March 3rd, 2025", "March third, twenty twenty-five"),
    ("June 21", "June twenty-first"),
    ("in 1984", "in nineteen eighty-four"),
    ("1,234 people", "one thousand two hundred thirty-four people"),
    ("50% off", "fifty percent off"),
    ("pi is 3.14", "pi is three point one four"),
    ("-4 degrees", "minus four degrees"),
    ("the 21st century", "the twenty-first century"),
    ("salt & pepper", "salt and pepper"),
    ("no numbers here", "no numbers here"),
])
def test_english_text(text: str, spoken: str) -> None:
    assert normalize(text, "en") == spoken


@pytest.mark.parametrize(("n", "words"), [
    (0, "영"), (1, "일"), (10, "십"), (11, "십일"), (20, "이십"), (100, "백"), (101, "백일"),
    (1000, "천"), (2024, "이천이십사"), (10000, "만"), (15000, "만오천"),
    (120000, "십이만"), (100000000, "일억"), (300000005, "삼억오"),
])
def test_sino_korean(n: int, words: str) -> None:
    assert sino(n) == words


@pytest.mark.parametrize(("n", "plain", "attributive"), [
    (1, "하나", "한"), (2, "둘", "두"), (3, "셋", "세"), (4, "넷", "네"), (10, "열", "열"),
    (11, "열하나", "열한"), (20, "스물", "스무"), (21, "스물하나", "스물한"),
    (99, "아흔아홉", "아흔아홉"),
])
def test_native_korean(n: int, plain: str, attributive: str) -> None:
    assert native(n) == plain
    assert native(n, attributive=True) == attributive
    assert native(100) is None


@pytest.mark.parametrize(("text", "spoken"), [
    ("2024년", "이천이십사년"),
    ("2024년 3월 15일", "이천이십사년 삼월 십오일"),
    ("6월 10일", "유월 십일"),
    ("10월 9일", "시월 구일"),
    ("2024-10-09", "이천이십사년 시월 구일"),
    ("3시", "세 시"),
    ("오후 3시 30분", "오후 세 시 삼십 분"),
    ("12시 5분 10초", "열두 시 오 분 십 초"),
    ("3:05에", "세 시 오 분에"),
    ("3시간", "세 시간"),
    ("사과 5개", "사과 다섯 개"),
    ("20살", "스무 살"),
    ("학생 2명", "학생 두 명"),
    ("10,000원", "만 원"),
    ("5000원", "오천 원"),
    ("₩1,500", "천오백 원"),
    ("$5.50", "오 달러 오십 센트"),
    ("50% 할인", "오십 퍼센트 할인"),
    ("3.14", "삼 점 일사"),
    ("123", "백이십삼"),
    ("숫자 없음", "숫자 없음"),
    ("무게는 1.5kg이에요", "무게는 일 점 오 킬로그램이에요"),
    ("기온 20°C", "기온 이십 도"),
    ("3km 거리", "삼 킬로미터 거리"),
    ("물 500ml", "물 오백 밀리리터"),
    ("100m 달리기", "백 미터 달리기"),
    ("2 L", "이 리터"),
    ("Python 3 let", "Python 삼 let"),  # a letter word after a number is not a unit
    ("mp3 파일", "mp삼 파일"),
])
def test_korean_text(text: str, spoken: str) -> None:
    assert normalize(text, "ko") == spoken


def test_other_languages_pass_through_and_hangul_means_korean() -> None:
    assert normalize("Es kostet 5 €", "de") == "Es kostet 5 €"
    assert language_of("안녕 hello") == "ko"
    assert language_of("hello", default="en") == "en"


@pytest.mark.parametrize(("text", "sentences"), [
    ("Hello world. How are you? Fine!", ["Hello world.", "How are you?", "Fine!"]),
    ("Dr. Smith lives on Main St. in town.", ["Dr. Smith lives on Main St. in town."]),
    ("J. R. R. Tolkien wrote it. It cost $3.50.", ["J. R. R. Tolkien wrote it.",
                                                   "It cost $3.50."]),
    ('He said "stop." Then left.', ['He said "stop."', "Then left."]),
    ("Well… maybe not. OK", ["Well… maybe not.", "OK"]),
    ("line one\nline two", ["line one", "line two"]),
    ("안녕하세요. 반갑습니다! 날씨가 어때요? 좋아요。",
     ["안녕하세요.", "반갑습니다!", "날씨가 어때요?", "좋아요。"]),
    ("  ", []),
])
def test_sentence_splitting(text: str, sentences: list[str]) -> None:
    assert split_sentences(text) == sentences


def test_numbers_past_the_named_scales_are_read_digit_by_digit() -> None:
    assert cardinal(12 * 10**15) == "one two zero zero zero zero zero zero zero zero zero zero " \
        "zero zero zero zero zero"
    assert sino(10**16 + 5) == "일영영영영영영영영영영영영영영영오"
    assert sino(3 * 10**12) == "삼조"


def test_a_run_on_sentence_is_cut_into_pieces_the_model_can_hold() -> None:
    from export.tts.runtime.sentences import MAX_SENTENCE_CHARS

    run_on = " ".join(["the weather is fine"] * 200) + "."
    pieces = split_sentences(run_on)
    assert len(pieces) > 10 and all(len(p) <= MAX_SENTENCE_CHARS for p in pieces)
    assert " ".join(pieces) == run_on  # nothing lost, cut between words
    clauses = split_sentences("One clause here, " * 40 + "end.")
    assert all(p.endswith(",") for p in clauses[:-1])  # at clause marks when there are some
