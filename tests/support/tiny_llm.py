"""A tiny randomly initialised Llama checkpoint (HF directory) with a real byte-level BPE
tokenizer and a ChatML template: the real architecture, small enough for 2 CPU cores."""

from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")

CORPUS = [
    "What is the capital of France? The capital of France is Paris.",
    "Hello, how are you today? I am fine, thank you.",
    "안녕하세요 오늘 날씨가 좋네요. 감사합니다.",
    "The sea is blue and the sky is wide. 😀 🎙️",
] * 20


def build_tokenizer():  # type: ignore[no-untyped-def]
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>",
                                                                  "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<|im_start|>",
                                   eos_token="<|im_end|>", unk_token="<|endoftext|>",
                                   pad_token="<|endoftext|>")
    fast.chat_template = CHAT_TEMPLATE
    return fast


TINY_DIMS = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2,
             "max_position_embeddings": 512}


def _build_tiny(directory: Path, seed: int, architecture: str, jitter_vectors: bool = False,
                **config) -> Path:  # type: ignore[no-untyped-def]
    import torch
    import transformers
    from transformers import GenerationConfig

    tokenizer = build_tokenizer()
    model_config = getattr(transformers, f"{architecture}Config")(
        vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, **TINY_DIMS, **config)
    torch.manual_seed(seed)
    model = getattr(transformers, f"{architecture}ForCausalLM")(model_config)
    # larger random weights than the default init: sharper logits, fewer argmax near-ties
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.2)
            elif jitter_vectors:  # biases and norms away from their 0 / 1 init
                p.add_(torch.randn_like(p) * 0.02)
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id,
                                               bos_token_id=tokenizer.bos_token_id,
                                               pad_token_id=tokenizer.pad_token_id)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def build_tiny_llama(directory: Path, seed: int = 0) -> Path:
    return _build_tiny(directory, seed, "Llama",
                       pad_token_id=build_tokenizer().pad_token_id)


def build_tiny_qwen2(directory: Path, seed: int = 0) -> Path:
    """The Qwen2 architecture (biased q/k/v projections, tied embeddings like the 0.5B)."""
    return _build_tiny(directory, seed, "Qwen2", jitter_vectors=True, tie_word_embeddings=True)
