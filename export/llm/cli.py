"""Export a causal LM (Hugging Face directory or GGUF file) as the ``llm`` model.

ONNX Runtime GenAI's model builder writes ``model.onnx`` and ``genai_config.json`` for the
chosen ``--precision``; beside them go tokenizer.json, chat_template.jinja,
generation.json and model.py. Gates (figures in the manifest): the chat template rendered
here equals transformers' rendering, tokenizer ids are equal, and the quality gates of
``export.llm.quality`` (fp32: greedy tokens identical to transformers; int8/int4:
perplexity ratio to the fp32 source within ``--max-perplexity-increase``).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from export.llm import builder, quality
from export.llm.genai import load_model
from export.llm.generation import TEMPLATE_FILE, TOKENIZER_FILE, GenerationAssets, render_chat
from export.progress import step
from export.repository import Manifest, ModelRepository, ParityFigure

PARITY_PROMPTS = (
    "What is the capital of France?",
    "Write one sentence about the sea.",
    "안녕하세요! 오늘 기분이 어때요? 😀",
)
DEFAULT_PRECISION = "int4"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--precision", choices=builder.PRECISIONS, default=DEFAULT_PRECISION,
                        help="weight precision (int4: the measured default, see README)")
    parser.add_argument("--execution-provider", choices=builder.EXECUTION_PROVIDERS,
                        default="cpu", help="build for the CPU or for CUDA (the GPU profile)")
    parser.add_argument("--builder-option", action="append", default=[], metavar="KEY=VALUE",
                        help="extra option for the GenAI model builder (repeatable), e.g. "
                        "block_size=64; overrides the precision preset")
    parser.add_argument("--parity-tokens", type=int, default=32,
                        help="greedy tokens per prompt compared with transformers")
    parser.add_argument("--max-perplexity-increase", type=float, default=0.05,
                        help="int8/int4 fail above this perplexity increase over fp32 "
                        "(0.05: +5 %%)")


def run(args: argparse.Namespace, repository: ModelRepository) -> Manifest:
    from export.llm.source import load_checkpoint, saved_for_builder

    with step("load checkpoint"):
        checkpoint = load_checkpoint(args.source)
    model, tokenizer = checkpoint.model, checkpoint.tokenizer
    options = builder.builder_options(
        args.precision, dict(builder.parse_option(o) for o in args.builder_option))
    with repository.new_version("llm", args.version) as version, \
            tempfile.TemporaryDirectory(prefix="llm-export-") as scratch:
        out = version.path
        with step(f"build {args.precision} ({args.execution_provider}) with the GenAI "
                  "model builder"):
            hf_dir = saved_for_builder(checkpoint, Path(scratch) / "hf")
            genai_config = builder.build(hf_dir, out, args.precision, args.execution_provider,
                                         Path(scratch) / "cache", options)
        assets = GenerationAssets(
            eos_token_ids=_eos_ids(model, tokenizer), bos_token=tokenizer.bos_token,
            eos_token=tokenizer.eos_token,
            context_tokens=int(genai_config["model"]["context_length"]),
            vocab_size=int(model.config.vocab_size))
        assets.save(out)
        tokenizer.backend_tokenizer.save(str(out / TOKENIZER_FILE))
        (out / TEMPLATE_FILE).write_text(tokenizer.chat_template, encoding="utf-8")
        version.install_code(Path(__file__).with_name("triton_model.py"))
        with step("quality gates against transformers"):
            parity = _gates(model, tokenizer, out, assets, args)
        decoder = genai_config["model"]["decoder"]
        return version.write_manifest(Manifest(
            model="llm", version=version.version, source=checkpoint.source,
            dimensions={"layers": decoder["num_hidden_layers"],
                        "kv_heads": decoder["num_key_value_heads"],
                        "head_dim": decoder["head_size"], "vocab_size": assets.vocab_size,
                        "context_tokens": assets.context_tokens},
            parity=parity,
            extra={"engine": "onnxruntime-genai", "precision": args.precision,
                   "execution_provider": args.execution_provider, "builder_options": options,
                   "prompts": list(PARITY_PROMPTS),
                   "perplexity_text": quality.PERPLEXITY_TEXT}))


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


def _gates(model, tokenizer, out: Path, assets: GenerationAssets,  # type: ignore[no-untyped-def]
           args: argparse.Namespace) -> list[ParityFigure]:
    import torch
    from tokenizers import Tokenizer

    exported_tokenizer = Tokenizer.from_file(str(out / TOKENIZER_FILE))
    template = (out / TEMPLATE_FILE).read_text(encoding="utf-8")
    genai = load_model(out)
    new_tokens = args.parity_tokens
    rendered_ok, ids_ok = 0, 0
    reference_tokens, exported_tokens = [], []
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
            # min_new_tokens = max_new_tokens: exactly N tokens, EOS masked like GenAI's
            generated = model.generate(torch.tensor([ids]), attention_mask=torch.ones(
                1, len(ids), dtype=torch.long), do_sample=False, max_new_tokens=new_tokens,
                min_new_tokens=new_tokens, pad_token_id=assets.eos_token_ids[0])
        reference_tokens.append(generated[0, len(ids):].tolist())
        exported_tokens.append(quality.genai_greedy(genai, ids, new_tokens))
    text_ids = tokenizer(quality.PERPLEXITY_TEXT, add_special_tokens=False)["input_ids"]
    count = len(PARITY_PROMPTS)
    return [
        ParityFigure("chat_template_rendering", float(count - rendered_ok), 0.0,
                     rendered_ok == count, metric="differing_prompts"),
        ParityFigure("tokenizer_ids", float(count - ids_ok), 0.0, ids_ok == count,
                     metric="differing_prompts"),
        *quality.quality_figures(args.precision, reference_tokens, exported_tokens,
                                 quality.torch_perplexity(model, text_ids),
                                 quality.genai_perplexity(genai, text_ids),
                                 args.max_perplexity_increase),
    ]
