"""The pool of idle generators behind prefix reuse: longest shared prefix wins, keys must
match, the last prompt token is always left to append, least recently used goes first."""

from __future__ import annotations

from export.llm.prefix_cache import PrefixCache, common_prefix

KEY = (("do_sample", False),)


def test_longest_shared_prefix_is_taken_and_removed() -> None:
    cache = PrefixCache(capacity=4, min_tokens=2)
    cache.put(KEY, [1, 2, 3, 4], "short")
    cache.put(KEY, [1, 2, 3, 4, 5, 6, 7], "long")
    cache.put(KEY, [9, 9, 9, 9, 9], "other")
    reuse = cache.take(KEY, [1, 2, 3, 4, 5, 6, 8, 8])
    assert (reuse.generator, reuse.cached_tokens) == ("long", 6)
    assert len(cache) == 2  # a generator serves one stream at a time
    assert cache.take(KEY, [1, 2, 3, 4, 5, 6, 8, 8]).generator == "short"


def test_identical_prompt_leaves_its_last_token_to_append() -> None:
    cache = PrefixCache(capacity=2, min_tokens=1)
    cache.put(KEY, [5, 6, 7, 8, 9], "g")
    assert cache.take(KEY, [5, 6, 7]).cached_tokens == 2


def test_other_search_options_short_prefixes_and_capacity() -> None:
    cache = PrefixCache(capacity=2, min_tokens=3)
    cache.put(KEY, [1, 2, 3, 4], "a")
    assert cache.take((("do_sample", True),), [1, 2, 3, 4, 5]) is None
    assert cache.take(KEY, [1, 2, 7, 7]) is None  # 2 shared < min_tokens
    cache.put(KEY, [2, 2, 2, 2], "b")
    cache.put(KEY, [3, 3, 3, 3], "c")  # evicts "a", the least recently put
    assert len(cache) == 2
    assert cache.take(KEY, [1, 2, 3, 4, 5]) is None
    assert PrefixCache(capacity=0).put(KEY, [1], "x") is None
    assert common_prefix([1, 2, 3], [1, 2, 4, 5]) == 2


def test_clear_empties_the_pool() -> None:
    cache = PrefixCache(capacity=3, min_tokens=1)
    cache.put(KEY, [1, 2], "g")
    cache.clear()
    assert len(cache) == 0


def test_a_turn_prefilled_word_by_word_keeps_one_entry_of_the_conversation() -> None:
    """Each prefill of a growing turn takes the conversation's generator and puts it back
    holding more words: the pool never fills with a turn's earlier drafts, and another
    conversation's entry is not evicted by them."""
    cache = PrefixCache(capacity=2, min_tokens=2)
    history = [1, 2, 3, 4]
    cache.put(KEY, history, "conversation")
    cache.put(KEY, [8, 8, 8, 8], "other conversation")
    said: list[int] = []
    for word in (5, 6, 7):
        said.append(word)
        prompt = [*history, *said, 99]  # 99: the end of the user's message
        reuse = cache.take(KEY, prompt)
        assert reuse is not None and reuse.generator == "conversation"
        assert reuse.cached_tokens == len(history) + len(said) - 1  # all but the new word
        cache.put(KEY, prompt[:-1], reuse.generator)
    assert len(cache) == 2
    assert cache.take(KEY, [8, 8, 8, 8, 1]).generator == "other conversation"
    # the turn went on differently ("5 6 0"): only what still agrees is reused
    assert cache.take(KEY, [*history, 5, 6, 0, 99]).cached_tokens == len(history) + 2
