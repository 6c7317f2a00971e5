"""A tiny randomly initialised BERT sentence-transformer (real architecture, real
vocabulary from the bundled all-MiniLM-L6-v2 tokenizer) for export tests."""

from __future__ import annotations

import shutil
from pathlib import Path

TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json",
                   "special_tokens_map.json")


def build_tiny_sentence_bert(directory: Path, pooling: str = "cls") -> Path:
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel

    from export.embedder.source import bundled_minilm

    torch.manual_seed(0)
    bert = directory / "bert"
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=128)
    BertModel(config).save_pretrained(bert)
    for name in TOKENIZER_FILES:
        shutil.copy(bundled_minilm() / name, bert / name)
    model = SentenceTransformer(modules=[models.Transformer(str(bert), max_seq_length=64),
                                         models.Pooling(32, pooling_mode=pooling)],
                                device="cpu")
    out = directory / "sentence-transformer"
    model.save(str(out))
    return out
