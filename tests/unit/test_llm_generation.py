"""Decoding pieces of the llm model: incremental detokenisation (Korean, emoji), stop
sequences, sampling, the chat template renderer, and prompt building by tokens."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from export.llm.generation import (
    IncrementalDetokenizer,
    SamplingConfig,
    StopMatcher,
    render_chat,
)
from orchestrator.chat.prompt import MEMORY_HEADER, HistoryCursor, build_messages
from orchestrator.errors import InvalidRequest
from storage.conversations import TurnRecord
from tests.support.tiny_llm import CHAT_TEMPLATE, build_tokenizer

TEXTS = ["안녕하세요, 반갑습니다! 오늘 날씨가 정말 좋네요.",
         "Emoji: 😀🎙️👩‍👩‍👧 and 🇰🇷 flags, 漢字 too.",
         "mixed 한국어 text 😀 ñ é ü"]


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    return build_tokenizer().backend_tokenizer


@pytest.mark.parametrize("text", TEXTS)
def test_deltas_are_whole_characters_and_add_up(tokenizer, text: str) -> None:
    ids = tokenizer.encode(text, add_special_tokens=False).ids
    # the byte-level tokenizer really splits characters across tokens here
    assert any("\ufffd" in tokenizer.decode([i]) for i in ids)
    detok = IncrementalDetokenizer(tokenizer)
    deltas = [detok.push(i) for i in ids] + [detok.flush()]
    assert all("\ufffd" not in d for d in deltas)
    assert "".join(deltas) == text


def test_skips_special_tokens(tokenizer) -> None:
    ids = tokenizer.encode("<|im_start|>안녕<|im_end|>", add_special_tokens=False).ids
    detok = IncrementalDetokenizer(tokenizer)
    assert "".join(detok.push(i) for i in ids) + detok.flush() == "안녕"


def test_stop_matcher_holds_back_partial_stop_and_cuts_at_stop() -> None:
    stops = StopMatcher(["\nUser:", "###"])
    out = []
    stopped = False
    for delta in ["Hello", " there\n", "Us", "er: more"]:
        text, stopped = stops.feed(delta)
        out.append(text)
        if stopped:
            break
    assert stopped
    assert out == ["Hello", " there", "", ""]  # "\n" and "\nUs" were held back
    assert "".join(out) == "Hello there"


def test_stop_matcher_releases_held_text_when_not_a_stop() -> None:
    stops = StopMatcher(["###"])
    assert stops.feed("a#") == ("a", False)
    assert stops.feed("#b") == ("##b", False)
    assert stops.flush() == ""
    assert StopMatcher([]).feed("x") == ("x", False)


def test_sampling_config_maps_to_genai_search_options() -> None:
    greedy = SamplingConfig(temperature=0.0, top_k=5, seed=9).search_options(400)
    assert greedy == {"do_sample": False, "repetition_penalty": 1.0}
    sampled = SamplingConfig(temperature=0.8, top_p=0.9, top_k=0, repetition_penalty=1.1,
                             seed=2**40 + 7).search_options(400)
    # top_k 0 (no cut) is the whole vocabulary, not GenAI's default of 50; 32-bit seed
    assert sampled == {"do_sample": True, "temperature": 0.8, "top_p": 0.9, "top_k": 400,
                       "repetition_penalty": 1.1, "random_seed": 7}
    assert "random_seed" not in SamplingConfig(temperature=1.0).search_options(400)
    # a k past the vocabulary is no cut either (GenAI would refuse it: found by fuzzing)
    assert SamplingConfig(temperature=1.0, top_k=999).search_options(385)["top_k"] == 385


def test_flush_drops_a_character_cut_in_the_middle(tokenizer) -> None:
    ids = tokenizer.encode("어디에", add_special_tokens=False).ids
    cut = next(n for n in range(1, len(ids)) if tokenizer.decode(ids[:n]).endswith("\ufffd"))
    detok = IncrementalDetokenizer(tokenizer)
    text = "".join(detok.push(i) for i in ids[:cut]) + detok.flush()
    assert "\ufffd" not in text
    assert "어디에".startswith(text) and len(text) < 3


@pytest.mark.parametrize("bad", [SamplingConfig(temperature=-1), SamplingConfig(top_p=0),
                                 SamplingConfig(top_k=-2),
                                 SamplingConfig(repetition_penalty=0),
                                 SamplingConfig(seed=-1), SamplingConfig(seed=2**63)])
def test_sampling_config_rejects_bad_values(bad: SamplingConfig) -> None:
    with pytest.raises(ValueError, match="invalid"):
        bad.check()


def test_render_chat_matches_transformers() -> None:
    hf = build_tokenizer()
    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": "안녕 😀"}]
    assert render_chat(CHAT_TEMPLATE, messages) == hf.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True)


def _turn(i: int, role: str, text: str) -> TurnRecord:
    return TurnRecord(id=i, session_id="s", user_id="u", role=role, text=text, language=None,
                      audio_path=None, audio_duration_ms=None, stt_ms=None,
                      llm_first_token_ms=None, llm_total_ms=None, tts_first_audio_ms=None,
                      tts_total_ms=None, voice_to_voice_ms=None, prompt_tokens=None,
                      completion_tokens=None, interrupted=False, created_at=datetime.now(UTC))


def words(text: str) -> int:
    return len(text.split())


def test_prompt_keeps_newest_turns_within_budget() -> None:
    turns = [_turn(i, "user" if i % 2 == 0 else "assistant", f"turn {i} " + "w " * 8)
             for i in range(10)]  # 10 words each: cost 14 with the message overhead
    messages = build_messages(instructions="be kind", turns=turns, user_text="hello there",
                              count_tokens=words, budget_tokens=6 + 6 + 14 * 3 + 5)
    assert [m.role for m in messages] == ["system", "assistant", "user", "assistant", "user"]
    assert [m.content.split()[1] for m in messages[1:4]] == ["7", "8", "9"]
    assert messages[-1].content == "hello there"


def test_prompt_adds_memories_that_fit_and_rejects_oversized_input() -> None:
    messages = build_messages(instructions="sys", turns=[], user_text="hi",
                              count_tokens=words, budget_tokens=40,
                              memories=["likes tea", "lives in Seoul " + "x " * 50])
    assert messages[0].content == "sys"  # the same every turn: the prefix stays cacheable
    assert messages[-1].content.startswith(MEMORY_HEADER) and "likes tea" in messages[-1].content
    assert "Seoul" not in messages[-1].content and messages[-1].content.endswith("\n\nhi")
    with pytest.raises(InvalidRequest, match="LLM_CONTEXT_TOKENS"):
        build_messages(instructions="sys", turns=[], user_text="w " * 100,
                       count_tokens=words, budget_tokens=40)



def _growing_conversation(count: int, budget: int, *, window: int = 0) -> list[int]:
    """Build a prompt before each of ``count`` stored turns, as a live conversation does
    with its cursor; the first kept turn of each prompt (-1: none)."""
    turns: list[TurnRecord] = []
    cursor, starts = HistoryCursor(), []
    for i in range(count):
        offered = turns[-window:] if window else turns
        messages = build_messages(instructions="be kind", turns=offered, user_text="next one",
                                  count_tokens=words, budget_tokens=budget, cursor=cursor,
                                  truncated=bool(window) and len(turns) > window)
        assert sum(words(m.content) + 4 for m in messages) <= budget
        history = messages[1:-1]
        if turns:
            assert history[-1].content == turns[-1].text  # the newest turn always stays
        starts.append(int(history[0].content.split()[1]) if history else -1)
        turns.append(_turn(i, "user" if i % 2 == 0 else "assistant", f"turn {i} " + "w " * 8))
    return starts


def test_a_live_history_keeps_its_first_turn_until_it_no_longer_fits() -> None:
    """So each prompt extends the one before and the llm's prefix cache answers it."""
    starts = _growing_conversation(80, budget=6 + 6 + 14 * 8)  # room for 8 stored turns
    assert starts[:9] == [-1] + [0] * 8  # all fits: nothing moves
    moves = [i for i in range(1, 80) if starts[i] != starts[i - 1] and starts[i - 1] != -1]
    # Cutting at the oldest turn that fits would move the start on each of the 71 turns
    # after the ninth; the cursor moves it once every 5 turns, keeping the newest half.
    assert moves == list(range(9, 80, 5))
    assert all(i - starts[i] == 4 for i in moves)  # 4 turns fill half the room


def test_a_live_history_moves_seldom_when_the_callers_window_moves() -> None:
    starts = _growing_conversation(60, budget=10_000, window=20)
    moves = [i for i in range(1, 60) if starts[i] != starts[i - 1] and starts[i - 1] != -1]
    assert starts[20] == 0 and starts[21] == 11  # the window passed turn 0: keep 10 of 20
    assert len(moves) == 4
    assert all(starts[i] == i - 10 for i in moves)


def test_without_a_cursor_the_history_is_what_fits() -> None:
    turns = [_turn(i, "user" if i % 2 == 0 else "assistant", f"turn {i} " + "w " * 8)
             for i in range(30)]
    messages = build_messages(instructions="be kind", turns=turns, user_text="next one",
                              count_tokens=words, budget_tokens=6 + 6 + 14 * 8)
    assert [m.content.split()[1] for m in messages[1:-1]] == [str(i) for i in range(22, 30)]


def test_the_served_llm_leaves_one_core_to_speech_unless_told_otherwise() -> None:
    from export.llm.genai import served_threads

    assert served_threads(0, cpus=2) == 1
    assert served_threads(0, cpus=16) == 15
    assert served_threads(0, cpus=1) == 1  # one core: it cannot leave any
    assert served_threads(2, cpus=2) == 2  # an explicit intra_op_threads wins
