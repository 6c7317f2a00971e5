"""The loop guard: a spoken reply that repeats itself back to back is stopped."""

from __future__ import annotations

import pytest

from orchestrator.realtime.reply.repetition import LoopGuard

PROSE = (
    "Paris is the capital of France. It sits on the Seine, and it is known for the Eiffel "
    "Tower, the Louvre and its cafes. New York, New York is a song; it is very, very old. "
    "Count with me: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12. The year 2000 had 366 days. "
    "Ha ha! Well, well, well. Green tea: boil water, let it cool to 80 degrees, steep the "
    "leaves for two minutes, then pour. The moon is about 384,400 kilometres away. "
    "Yes, yes. No, no, no. Step one, step two, step three. 100,000,000 people.")


def first_loop(text: str, step: int = 3) -> int | None:
    guard = LoopGuard()
    for end in range(step, len(text) + step, step):
        if guard.feed(text[end - step:end]):
            return min(end, len(text))
    return None


@pytest.mark.parametrize("step", [1, 3, 7])
def test_prose_with_natural_repeats_is_not_a_loop(step: int) -> None:
    assert first_loop(PROSE, step) is None


def test_a_digit_run_stops_after_32_characters_of_it() -> None:
    text = "The moon is approximately 11." + "1" * 200
    guard = LoopGuard()
    end = next(i for i in range(1, len(text) + 1) if guard.feed(text[i - 1]))
    assert text[:end].endswith("1" * 32) and not text[:end].endswith("1" * 33)
    assert guard.repeated == 31  # unsaying it leaves "11." and one "1"


def test_a_repeated_clause_stops_on_its_second_copy() -> None:
    clause = "they were so large that they could fit inside a large city block, "
    text = "Octopuses are big. " + clause * 5
    end = first_loop(text, step=4)
    assert end is not None and len("Octopuses are big. " + clause) < end \
        <= len("Octopuses are big. " + clause * 2) + 4
    guard = LoopGuard()
    assert guard.feed(text[:end])
    assert guard.repeated == len(clause)  # unsaying it leaves one copy
    assert text[:end - guard.repeated].count("city block") == 1


def test_the_guard_stays_tripped() -> None:
    guard = LoopGuard()
    assert guard.feed("ab" * 30) is True
    assert guard.feed("fresh text") is True and guard.looped
