"""Error rates transcripts are judged by: Korean characters after the normaliser, loops
capped per sentence, and other written forms of one reference."""

from __future__ import annotations

import pytest

from export.stt.scoring import cer, characters, wer


def test_characters_read_numbers_as_spoken_and_drop_spacing() -> None:
    assert characters("3시, 서울!") == characters("세 시 서울")
    assert characters("서울은 어디, 있나요?") == list("서울은어디있나요")


def test_a_loop_costs_its_sentence_not_the_set() -> None:
    looped = "사과" + "쭉" * 200
    assert cer(["사과를 주세요", "안녕하세요"], [looped, "안녕하세요"]) == pytest.approx(6 / 11)


def test_the_closest_written_form_counts_and_the_first_sets_the_length() -> None:
    reference = "오늘 meeting은 | 오늘 미팅은"
    assert cer([reference], ["오늘 미팅은"]) == 0.0
    assert cer([reference], ["오늘 meeting은"]) == 0.0
    # one wrong syllable against the Hangul form, over the written form's 10 characters
    assert cer([reference], ["오늘 미딩은"]) == pytest.approx(1 / 10)
    assert cer(["오늘 meeting은"], ["오늘 미팅은"]) == pytest.approx(7 / 10)


def test_wer_counts_every_word_error() -> None:
    assert wer(["hello world"], ["hello there world again"]) == pytest.approx(1.0)
