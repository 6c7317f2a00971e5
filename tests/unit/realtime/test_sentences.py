"""Sentence chunker: where streamed text is cut for synthesis."""

from __future__ import annotations

from orchestrator.realtime.reply.sentences import SentenceChunker, sentences


def feed_all(deltas: list[str], max_chars: int = 240) -> list[str]:
    chunker = SentenceChunker(max_chars)
    out = [s for d in deltas for s in chunker.feed(d)]
    return out + chunker.flush()


def test_splits_on_terminal_punctuation_followed_by_space() -> None:
    assert feed_all(["Hello", " there", ".", " It is", " sunny!", " Bye"]) == \
        ["Hello there.", "It is sunny!", "Bye"]


def test_sentence_is_released_as_soon_as_the_space_after_it_arrives() -> None:
    chunker = SentenceChunker()
    assert chunker.feed("Sure.") == []
    assert chunker.feed(" Then") == ["Sure."]


def test_numbers_and_dotted_words_do_not_split() -> None:
    assert feed_all(["It costs 3.5 dollars, e.g.x works. Done"]) == \
        ["It costs 3.5 dollars, e.g.x works.", "Done"]


def test_cjk_and_newlines_split_without_space() -> None:
    assert feed_all(["안녕하세요。오늘은", " 맑아요！", "line one\nline two"]) == \
        ["안녕하세요。", "오늘은 맑아요！", "line one", "line two"]


def test_run_on_text_is_cut_at_last_comma_or_space() -> None:
    out = feed_all(["word " * 30], max_chars=40)
    assert all(len(s) <= 40 for s in out)
    assert " ".join(out).split() == ["word"] * 30


def test_quotes_after_the_stop_stay_with_the_sentence() -> None:
    assert feed_all(['He said "yes." Then left.']) == ['He said "yes."', "Then left."]


async def test_stage_over_async_stream() -> None:
    async def deltas():  # type: ignore[no-untyped-def]
        for d in ["One. Two", ". Three"]:
            yield d

    assert [s async for s in sentences(deltas())] == ["One.", "Two.", "Three"]


def test_abbreviations_and_initials_do_not_end_a_sentence() -> None:
    assert feed_all(["Dr.", " Smith met J.", " Brown at", " noon.", " Then", " they left."]) \
        == ["Dr. Smith met J. Brown at noon.", "Then they left."]
    assert feed_all(["Mr.", " Kim arrived.", " He sat", " down."]) == \
        ["Mr. Kim arrived.", "He sat down."]


def test_the_chunker_cuts_where_the_tts_model_cuts() -> None:
    from export.tts.runtime.sentences import split_sentences

    text = ('He said "stop!" Then Mr. Lee left. It was 3.5 km, e.g. far… maybe. '
            "안녕하세요。오늘은 맑아요! Ok?\nNext line")
    for step in (1, 2, 3, 7):
        deltas = [text[i:i + step] for i in range(0, len(text), step)]
        assert feed_all(deltas) == split_sentences(text)


def test_transcript_deltas_only_ever_extend_what_was_sent() -> None:
    from orchestrator.realtime.user_turns import extension

    assert extension("", "what will") == "what will"
    assert extension("what will", "what will the weather") == " the weather"
    assert extension("what will", "what will") == ""
    assert extension("what wil", "what will the") == ""  # never split a word
    assert extension("what will", "What will the") == ""  # a revision: completed corrects it


def test_the_first_chunk_goes_at_the_first_clause_with_enough_words() -> None:
    chunker = SentenceChunker(first_clause_words=3)
    assert chunker.feed("Sure,") == []
    assert chunker.feed(" the capital") == []  # "Sure," is one word: too short alone
    assert chunker.feed(" of France,") == []  # the comma may still be inside "France,5"
    assert chunker.feed(" as you") == ["Sure, the capital of France,"]
    # Later chunks go by sentence, commas or not.
    assert chunker.feed(" know, is Paris. It") == ["as you know, is Paris."]
    assert chunker.flush() == ["It"]


def test_a_first_sentence_still_goes_whole_and_dashes_are_clauses() -> None:
    assert feed_all(["Paris is the capital. Yes, it is, really."]) == \
        ["Paris is the capital.", "Yes, it is, really."]
    chunker = SentenceChunker(first_clause_words=2)
    assert chunker.feed("Well then \u2014 here") == ["Well then \u2014"]
    assert SentenceChunker(first_clause_words=2).feed("1,000 people came") == []


def test_a_first_sentence_without_clauses_goes_after_its_word_limit() -> None:
    chunker = SentenceChunker(first_clause_words=3, first_chunk_max_words=12)
    text = "The capital of France is Paris which is known for its art and food. Yes"
    tokens = text.replace(" ", "\0 ").split("\0")  # as an LLM streams them: " word"
    out = [piece for token in tokens for piece in chunker.feed(token)] + chunker.flush()
    # The 13th word's leading space shows the 12th is whole; later chunks go by sentence.
    assert out == ["The capital of France is Paris which is known for its art",
                   "and food.", "Yes"]
    assert SentenceChunker(first_clause_words=3, first_chunk_max_words=12).feed(
        "word " * 11 + "wo") == []
    assert SentenceChunker(first_clause_words=3).feed("word " * 30) == []  # no limit
    # a clause boundary within the limit still wins
    assert SentenceChunker(first_clause_words=2, first_chunk_max_words=8).feed(
        "Sure thing, I think so") == ["Sure thing,"]


def test_drop_last_takes_back_only_what_was_not_released() -> None:
    chunker = SentenceChunker()
    assert chunker.feed("First one. Then 1111") == ["First one."]
    chunker.drop_last(3)
    assert chunker.flush() == ["Then 1"]
    chunker.feed("abc")
    chunker.drop_last(10)
    assert chunker.flush() == []


def test_cut_releases_up_to_the_last_clause_else_the_last_whole_word() -> None:
    chunker = SentenceChunker()
    chunker.feed("Well, it is a long one, and it goe")
    assert chunker.cut() == ["Well, it is a long one,"]
    assert chunker.cut() == ["and it"]  # "goe" may go on
    assert chunker.cut() == []
    chunker.feed("s on.")
    assert chunker.flush() == ["goes on."]
