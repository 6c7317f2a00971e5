"""Export a causal LM (Hugging Face directory or GGUF file) as the ``llm`` model.

Writes decoder.onnx (KV cache), tokenizer.json, chat_template.jinja, generation.json and
model.py; parity: prefill and decode-step logits against transformers, the chat template
rendered here against transformers' own rendering, tokenizer ids, and the greedy
continuation of a few prompts identical for --parity-tokens tokens.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from export.llm.generation import (
    DECODER_FILE,
    TEMPLATE_FILE,
    TOKENIZER_FILE,
    GenerationAssets,
    OnnxDecoder,
    render_chat,
)
from export.parity import max_abs_diff, sequences_equal
from export.progress import step
from export.repository import Manifest, ModelRepository, ParityFigure

PARITY_PROMPTS = (
    "What is the capital of France?",
    "Write one sentence about the sea.",
    "안녕하세요! 오늘 기분이 어때요? 😀",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--parity-tokens", type=int, default=32,
                        help="greedy tokens per prompt that must match transformers")
    parser.add_argument("--logits-tolerance", type=float, default=5e-3,
                        help="largest accepted |logit difference| against transformers")


def run(args: argparse.Namespace, repository: ModelRepository) -> Manifest:
    from export.llm.source import load_checkpoint

    with step("load checkpoint"):
        checkpoint = load_checkpoint(args.source)
    model, tokenizer = checkpoint.model, checkpoint.tokenizer
    with repository.new_version("llm", args.version) as version:
        out = version.path
        with step("export ONNX decoder"):
            from export.llm.onnx_decoder import cache_geometry, export_decoder

            export_decoder(model, out / DECODER_FILE)
        layers, heads, head_dim = cache_geometry(model)
        assets = GenerationAssets(
            eos_token_ids=_eos_ids(model, tokenizer), bos_token=tokenizer.bos_token,
            eos_token=tokenizer.eos_token, num_layers=layers, num_kv_heads=heads,
            head_dim=head_dim,
            context_tokens=int(getattr(model.config, "max_position_embeddings", 2048)),
            vocab_size=int(model.config.vocab_size))
        assets.save(out)
        tokenizer.backend_tokenizer.save(str(out / TOKENIZER_FILE))
        (out / TEMPLATE_FILE).write_text(tokenizer.chat_template, encoding="utf-8")
        version.install_code(Path(__file__).with_name("triton_model.py"))
        with step("parity against transformers"):
            parity = _parity(model, tokenizer, out, assets, args.parity_tokens,
                             args.logits_tolerance)
        return version.write_manifest(Manifest(
            model="llm", version=version.version, source=checkpoint.source,
            dimensions={"layers": layers, "kv_heads": heads, "head_dim": head_dim,
                        "vocab_size": assets.vocab_size,
                        "context_tokens": assets.context_tokens},
            parity=parity, extra={"prompts": list(PARITY_PROMPTS)}))


def _eos_ids(model, tokenizer) -> list[int]:  # type: ignore[no-untyped-def]
    ids: set[int] = set()
    configured = getattr(model.generation_config, "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(int(i) for i in configured)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return sorted(ids)


def _parity(model, tokenizer, out: Path, assets: GenerationAssets, new_tokens: int,  # type: ignore[no-untyped-def]
            tolerance: float) -> list[ParityFigure]:
    import torch
    from tokenizers import Tokenizer

    exported_tokenizer = Tokenizer.from_file(str(out / TOKENIZER_FILE))
    template = (out / TEMPLATE_FILE).read_text(encoding="utf-8")
    decoder = OnnxDecoder(out / DECODER_FILE, assets)
    rendered_ok, ids_ok = 0, 0
    reference_tokens, exported_tokens = [], []
    prefill_ref, prefill_onnx, step_ref, step_onnx = [], [], [], []
    for prompt in PARITY_PROMPTS:
        messages = [{"role": "user", "content": prompt}]
        text = render_chat(template, messages, bos_token=assets.bos_token,
                           eos_token=assets.eos_token)
        expected = tokenizer.apply_chat_template(messages, tokenize=False,
                                                 add_generation_prompt=True)
        rendered_ok += text == expected
        ids = tokenizer(expected, add_special_tokens=False)["input_ids"]
        ids_ok += exported_tokenizer.encode(text, add_special_tokens=False).ids == ids
        with torch.no_grad():
            torch_out = model(torch.tensor([ids]), use_cache=False).logits[0].numpy()
            # min_new_tokens = max_new_tokens: exactly N tokens, EOS masked like below
            generated = model.generate(torch.tensor([ids]), attention_mask=torch.ones(
                1, len(ids), dtype=torch.long), do_sample=False, max_new_tokens=new_tokens,
                min_new_tokens=new_tokens, pad_token_id=assets.eos_token_ids[0])
        reference_tokens.append(generated[0, len(ids):].tolist())
        logits, cache = decoder.forward(ids[:-1], decoder.empty_cache())
        prefill_ref.append(torch_out[-2])
        prefill_onnx.append(logits)
        logits, _ = decoder.forward(ids[-1:], cache)
        step_ref.append(torch_out[-1])
        step_onnx.append(logits)
        exported_tokens.append(decoder.greedy(ids, new_tokens, suppress=assets.eos_token_ids))
    count = len(PARITY_PROMPTS)
    return [
        max_abs_diff("prefill_logits", np.stack(prefill_ref), np.stack(prefill_onnx),
                     tolerance),
        max_abs_diff("decode_step_logits", np.stack(step_ref), np.stack(step_onnx), tolerance),
        ParityFigure("chat_template_rendering", float(count - rendered_ok), 0.0,
                     rendered_ok == count, metric="differing_prompts"),
        ParityFigure("tokenizer_ids", float(count - ids_ok), 0.0, ids_ok == count,
                     metric="differing_prompts"),
        sequences_equal(f"greedy_{new_tokens}_tokens", reference_tokens, exported_tokens),
    ]
