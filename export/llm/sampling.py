"""Choosing the next token from a row of logits, for the batched CPU decoder.

GenAI samples inside its generator; the batched decoder (``export.llm.batched``) runs the
graph itself and so needs its own sampler, with the same parameters and the same meaning
(Hugging Face's): the repetition penalty divides the positive logits of tokens already in
the sequence and multiplies the negative ones, temperature 0 is exactly argmax, top-k
then top-p cut the distribution before drawing. A seed makes a stream's draws
reproducible; each stream has its own random state, so streams batched together never
change each other's draws.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from export.llm.generation import SamplingConfig

NUCLEUS_CANDIDATES = 1024
"""Top-p looks at this many of the most likely tokens first (a partial sort), and sorts
the whole vocabulary only when they do not hold the nucleus."""


class Sampler:
    def __init__(self, config: SamplingConfig) -> None:
        self.config = config
        self._rng = np.random.default_rng(config.seed)

    def next_token(self, logits: np.ndarray, seen: Sequence[int]) -> int:
        """The next token after ``seen`` (prompt and generated tokens) from ``logits``
        (float32, one row over the vocabulary)."""
        config = self.config
        if config.repetition_penalty != 1.0 and seen:
            logits = logits.astype(np.float32, copy=True)
            ids = np.unique(np.asarray(seen, dtype=np.int64))
            ids = ids[ids < logits.shape[0]]
            picked = logits[ids]
            logits[ids] = np.where(picked > 0, picked / config.repetition_penalty,
                                   picked * config.repetition_penalty)
        if config.temperature == 0.0:
            return int(np.argmax(logits))
        scaled = logits.astype(np.float64) / config.temperature
        vocab = scaled.shape[0]
        ids = None  # positions in ``scaled`` are token ids until top-k picks a subset
        if 0 < config.top_k < vocab:
            ids = np.argpartition(-scaled, config.top_k - 1)[:config.top_k]
            scaled = scaled[ids]
        weights = np.exp(scaled - scaled.max())
        chosen = (self._nucleus(weights, config.top_p) if config.top_p < 1.0
                  else np.arange(weights.shape[0]))
        cdf = np.cumsum(weights[chosen])
        pick = int(np.searchsorted(cdf, self._rng.random() * cdf[-1], side="right"))
        pick = int(chosen[min(pick, chosen.shape[0] - 1)])
        return int(ids[pick]) if ids is not None else pick

    @staticmethod
    def _nucleus(weights: np.ndarray, top_p: float) -> np.ndarray:
        """Positions of the smallest set of most likely tokens whose share of ``weights``
        reaches ``top_p`` (at least the best one)."""
        total = weights.sum()
        candidates = np.arange(weights.shape[0])
        if weights.shape[0] > NUCLEUS_CANDIDATES:
            top = np.argpartition(-weights, NUCLEUS_CANDIDATES)[:NUCLEUS_CANDIDATES]
            if weights[top].sum() >= top_p * total:
                candidates = top
        order = candidates[np.argsort(-weights[candidates], kind="stable")]
        reached = np.cumsum(weights[order]) / total
        keep = int(np.searchsorted(reached, top_p)) + 1
        return order[:min(keep, order.shape[0])]
