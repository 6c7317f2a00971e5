"""Korean replies cut into sentences and clauses: the one splitter the tts model and the
reply's chunker share (export/tts/runtime/sentences.py), on replies as an LLM writes
them, with punctuation and without."""

from __future__ import annotations

import pytest

from export.tts.runtime.sentences import split_complete, split_sentences
from orchestrator.realtime.reply.sentences import SentenceChunker


@pytest.mark.parametrize(("reply", "sentences"), [
    ("안녕하세요. 무엇을 도와드릴까요?", ["안녕하세요.", "무엇을 도와드릴까요?"]),
    # no punctuation: a final ending and a space end the sentence
    ("네 알겠어요 내일 세 시에 만나요", ["네 알겠어요", "내일 세 시에 만나요"]),
    ("날씨는 맑습니다 기온은 이십 도입니다", ["날씨는 맑습니다", "기온은 이십 도입니다"]),
    ("어제 영화를 봤다 정말 재미있었다", ["어제 영화를 봤다", "정말 재미있었다"]),
    ("그렇죠 제가 도와드릴게요", ["그렇죠", "제가 도와드릴게요"]),
    ("점심은 뭘 먹을까 고민 중이에요", ["점심은 뭘 먹을까", "고민 중이에요"]),
    # endings that also join words or clauses do not cut
    ("저는 커피보다 녹차를 더 좋아해요", ["저는 커피보다 녹차를 더 좋아해요"]),
    ("이건 필요 없고 중요 사항만 말씀드릴게요", ["이건 필요 없고 중요 사항만 말씀드릴게요"]),
    ("바다를 보고 싶어서 부산에 가요", ["바다를 보고 싶어서 부산에 가요"]),
    ("할까 말까 고민이에요", ["할까 말까 고민이에요"]),
    # mixed Korean and English, and English alone, as before
    ("서울은 Seoul 이에요 맞아요", ["서울은 Seoul 이에요", "맞아요"]),
    ("It is sunny. Bye", ["It is sunny.", "Bye"]),
])
def test_korean_sentences(reply: str, sentences: list[str]) -> None:
    assert split_sentences(reply) == sentences


def test_a_streamed_ending_waits_for_the_next_word() -> None:
    # "만나요" may still become "만나요?" or "만나요." : nothing is released before more text
    assert split_complete("네 알겠어요 만나요") == (["네 알겠어요"], "만나요")
    assert split_complete("네 알겠어요 만나요 ") == (["네 알겠어요"], "만나요 ")


def feed(deltas: list[str]) -> list[str]:
    chunker = SentenceChunker(first_clause_words=3, first_chunk_max_words=3)
    return [c for d in deltas for c in chunker.feed(d)] + chunker.flush()


def tokens(text: str) -> list[str]:
    """As an LLM streams it: a few characters at a time."""
    return [text[i:i + 2] for i in range(0, len(text), 2)]


def test_first_chunk_of_an_unpunctuated_korean_reply_goes_after_a_few_words() -> None:
    chunks = feed(tokens("오늘 서울 날씨는 맑고 기온은 이십 도입니다 우산은 필요 없어요"))
    assert chunks[0] == "오늘 서울 날씨는"  # three words: about a second of speech
    assert chunks[1:] == ["맑고 기온은 이십 도입니다", "우산은 필요 없어요"]


def test_first_chunk_ends_at_a_korean_clause_connective() -> None:
    chunks = feed(tokens("비가 많이 오는데 우산을 꼭 챙기세요 감사합니다"))
    assert chunks == ["비가 많이 오는데", "우산을 꼭 챙기세요", "감사합니다"]
    chunks = feed(tokens("오늘은 날씨가 좋아서, 산책하러 갔어요."))
    assert chunks == ["오늘은 날씨가 좋아서,", "산책하러 갔어요."]
