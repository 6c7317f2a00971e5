"""The batched decoder's sampler: greedy is argmax, the penalty, top-k and top-p cut what
can be drawn, draws follow the distribution, and a seed reproduces them."""

from __future__ import annotations

import numpy as np
import pytest

from export.llm.generation import SamplingConfig
from export.llm.sampling import NUCLEUS_CANDIDATES, Sampler

VOCAB = 49152


def logits_with(probabilities: dict[int, float], vocab: int = VOCAB) -> np.ndarray:
    """Logits whose softmax gives each listed token its probability, the rest nothing
    to speak of (1000 below)."""
    logits = np.full(vocab, -1000.0, np.float32)
    for token, p in probabilities.items():
        logits[token] = np.log(p)
    return logits


def draws(config: SamplingConfig, logits: np.ndarray, n: int = 4000,
          seen: list[int] | None = None) -> dict[int, int]:
    sampler = Sampler(config)
    counts: dict[int, int] = {}
    for _ in range(n):
        token = sampler.next_token(logits, seen or [])
        counts[token] = counts.get(token, 0) + 1
    return counts


def test_temperature_zero_is_argmax() -> None:
    logits = np.random.default_rng(1).normal(size=VOCAB).astype(np.float32)
    assert Sampler(SamplingConfig(temperature=0.0)).next_token(logits, []) == int(
        logits.argmax())


def test_repetition_penalty_lowers_tokens_already_seen() -> None:
    logits = logits_with({10: 0.5, 11: 0.4, 12: 0.1})
    greedy = SamplingConfig(temperature=0.0, repetition_penalty=1.5)
    assert Sampler(greedy).next_token(logits, [10]) == 11  # log 0.5 < 0 is multiplied
    positive = np.zeros(VOCAB, np.float32)
    positive[[3, 4]] = [3.0, 2.5]
    assert Sampler(greedy).next_token(positive, [3, 3]) == 4  # 3.0 / 1.5 < 2.5
    assert Sampler(SamplingConfig(temperature=0.0)).next_token(positive, [3]) == 3


def test_draws_follow_the_distribution() -> None:
    counts = draws(SamplingConfig(temperature=1.0, seed=3), logits_with(
        {5: 0.6, 6: 0.3, 7: 0.1}))
    assert set(counts) == {5, 6, 7}
    assert counts[5] / 4000 == pytest.approx(0.6, abs=0.03)
    assert counts[7] / 4000 == pytest.approx(0.1, abs=0.02)


def test_temperature_sharpens_and_flattens() -> None:
    logits = logits_with({5: 0.6, 6: 0.4})
    cold = draws(SamplingConfig(temperature=0.25, seed=1), logits)
    hot = draws(SamplingConfig(temperature=4.0, seed=1), logits)
    # 0.6**4 / (0.6**4 + 0.4**4) = 0.835; 0.6**0.25 / (...) = 0.525
    assert cold[5] / 4000 == pytest.approx(0.835, abs=0.03)
    assert hot[5] / 4000 == pytest.approx(0.525, abs=0.03)


def test_top_k_keeps_only_the_k_most_likely() -> None:
    counts = draws(SamplingConfig(temperature=1.0, top_k=2, seed=4),
                   logits_with({5: 0.5, 6: 0.3, 7: 0.2}))
    assert set(counts) == {5, 6}
    assert counts[5] / 4000 == pytest.approx(0.5 / 0.8, abs=0.03)  # renormalised


@pytest.mark.parametrize("top_p", [0.5, 0.75, 0.85])
def test_top_p_keeps_the_smallest_set_reaching_p(top_p: float) -> None:
    counts = draws(SamplingConfig(temperature=1.0, top_p=top_p, seed=5),
                   logits_with({5: 0.5, 6: 0.3, 7: 0.2}))
    expected = {0.5: {5}, 0.75: {5, 6}, 0.85: {5, 6, 7}}[top_p]
    assert set(counts) == expected


def test_top_p_over_a_flat_distribution_sorts_the_whole_vocabulary() -> None:
    """More tokens than the partial sort looks at hold the nucleus: the full sort."""
    flat = np.zeros(VOCAB, np.float32)
    counts = draws(SamplingConfig(temperature=1.0, top_p=0.5, seed=6), flat, n=1200)
    assert len(counts) > NUCLEUS_CANDIDATES  # draws spread over half the vocabulary
    assert max(counts) < VOCAB


def test_a_seed_reproduces_the_draws_and_another_changes_them() -> None:
    logits = np.random.default_rng(2).normal(size=VOCAB).astype(np.float32)
    config = SamplingConfig(temperature=1.0, top_p=0.9, top_k=50, seed=7)

    def run(c: SamplingConfig) -> list[int]:
        sampler = Sampler(c)
        return [sampler.next_token(logits, []) for _ in range(32)]

    assert run(config) == run(config)
    assert run(config) != run(SamplingConfig(temperature=1.0, top_p=0.9, top_k=50, seed=8))
