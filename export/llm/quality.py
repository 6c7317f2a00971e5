"""Quality gates of an exported LLM against its transformers source.

* fp32: greedy tokens identical to transformers on the parity prompts; perplexity within
  0.1 % of transformers' on the fixed text.
* int8 / int4: greedy agreement (share of equal tokens, reported) and the perplexity ratio
  to the fp32 source on the fixed text, which fails the export above ``1 + bound``.

Perplexity is teacher-forced through the GenAI generator one token at a time, the way it
decodes in production (the graph's pruned lm_head yields the last position only).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from export.parity import sequences_equal
from export.repository import ParityFigure

# Fixed texts for perplexity: one English paragraph, one Korean (multilingual models).
PERPLEXITY_TEXT = (
    "The sea covers most of the surface of the Earth. It is home to many kinds of fish, "
    "whales and plants, and it shapes the weather of every continent. People have sailed "
    "across it for thousands of years to trade, to explore and to fish. Today, ships carry "
    "most of the goods that are bought and sold around the world.")
FP32_PERPLEXITY_TOLERANCE = 1e-3


def genai_greedy(model: Any, prompt_ids: Sequence[int], new_tokens: int) -> list[int]:
    """Exactly ``new_tokens`` greedy tokens (EOS suppressed, like transformers'
    ``min_new_tokens``)."""
    import onnxruntime_genai as og

    params = og.GeneratorParams(model)
    total = len(prompt_ids) + new_tokens
    params.set_search_options(max_length=total, min_length=total, do_sample=False,
                              past_present_share_buffer=False)
    generator = og.Generator(model, params)
    generator.append_tokens(list(prompt_ids))
    out: list[int] = []
    while not generator.is_done() and len(out) < new_tokens:
        generator.generate_next_token()
        out.append(int(generator.get_next_tokens()[0]))
    return out


def genai_perplexity(model: Any, ids: Sequence[int]) -> float:
    import onnxruntime_genai as og

    params = og.GeneratorParams(model)
    params.set_search_options(max_length=len(ids) + 1, do_sample=False,
                              past_present_share_buffer=False)
    generator = og.Generator(model, params)
    generator.append_tokens([int(ids[0])])
    nll = 0.0
    for token in ids[1:]:
        nll += _nll(generator.get_logits()[0, -1], int(token))
        generator.append_tokens([int(token)])
    return float(np.exp(nll / (len(ids) - 1)))


def torch_perplexity(model: Any, ids: Sequence[int]) -> float:
    import torch

    with torch.no_grad():
        logits = model(torch.tensor([list(ids)])).logits[0].numpy()
    nll = sum(_nll(logits[i], int(ids[i + 1])) for i in range(len(ids) - 1))
    return float(np.exp(nll / (len(ids) - 1)))


def _nll(logits: np.ndarray, target: int) -> float:
    row = logits.astype(np.float64)
    top = row.max()
    return float(np.log(np.exp(row - top).sum()) + top - row[target])


def greedy_agreement(reference: list[list[int]], exported: list[list[int]]) -> float:
    """Share of positions where the exported greedy token equals the reference's."""
    total = sum(len(r) for r in reference)
    equal = sum(int(a == b) for r, e in zip(reference, exported, strict=True)
                for a, b in zip(r, e, strict=False))
    return equal / total if total else 1.0


def quality_figures(precision: str, reference_tokens: list[list[int]],
                    exported_tokens: list[list[int]], source_perplexity: float,
                    exported_perplexity: float, max_increase: float) -> list[ParityFigure]:
    """The gates of ``precision`` (see the module doc)."""
    ratio = exported_perplexity / source_perplexity
    figures = [ParityFigure("perplexity_source", source_perplexity, 0.0, True,
                            metric="perplexity"),
               ParityFigure("perplexity_exported", exported_perplexity, 0.0, True,
                            metric="perplexity")]
    count = len(reference_tokens[0]) if reference_tokens else 0
    if precision == "fp32":
        figures.append(sequences_equal(f"greedy_{count}_tokens", reference_tokens,
                                       exported_tokens))
        bound = FP32_PERPLEXITY_TOLERANCE
    else:
        figures.append(ParityFigure(f"greedy_{count}_tokens_agreement",
                                    greedy_agreement(reference_tokens, exported_tokens),
                                    0.0, True, metric="share_equal"))
        bound = max_increase
    # fp32 must be the source within numerics; quantised versions may only lose a bound
    passed = abs(ratio - 1.0) <= bound if precision == "fp32" else ratio <= 1.0 + bound
    figures.append(ParityFigure("perplexity_ratio", ratio, 1.0 + bound, passed,
                                metric="ratio_to_fp32_source"))
    return figures

