"""Tokenizer and front-end assets written next to the weights (the model runs offline)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any


def whisper_assets_dir() -> Path:
    import whisper

    return Path(whisper.__file__).parent / "assets"


def write_tokenizer(model: Any, directory: Path) -> dict[str, Any]:
    """``tokenizer.json`` + the ``.tiktoken`` rank file, computed with whisper's tokenizer."""
    from whisper.tokenizer import LANGUAGES, TO_LANGUAGE_CODE, get_tokenizer

    tokenizer = get_tokenizer(model.is_multilingual, num_languages=model.num_languages)
    encoding = tokenizer.encoding
    name = "multilingual" if model.is_multilingual else "gpt2"
    if encoding.n_vocab > model.dims.n_vocab:
        raise ValueError(f"tokenizer has {encoding.n_vocab} tokens, model only "
                         f"{model.dims.n_vocab}")
    codes = list(LANGUAGES)[:model.num_languages] if model.is_multilingual else []
    special = dict(encoding._special_tokens)
    meta = {
        "encoding": name,
        "tiktoken_file": f"{name}.tiktoken",
        "pat_str": encoding._pat_str,
        "n_vocab": encoding.n_vocab,
        "special_tokens": special,
        "multilingual": bool(model.is_multilingual),
        "num_languages": model.num_languages,
        "ids": {"sot": tokenizer.sot, "eot": tokenizer.eot, "sot_prev": tokenizer.sot_prev,
                "sot_lm": tokenizer.sot_lm, "no_speech": tokenizer.no_speech,
                "no_timestamps": tokenizer.no_timestamps,
                "timestamp_begin": tokenizer.timestamp_begin,
                "transcribe": tokenizer.transcribe, "translate": tokenizer.translate},
        "languages": {code: special[f"<|{code}|>"] for code in codes},
        "language_aliases": {alias: code for alias, code in TO_LANGUAGE_CODE.items()
                             if code in codes},
        "non_speech_tokens": list(tokenizer.non_speech_tokens),
        "blank_tokens": tokenizer.encode(" "),
    }
    (directory / "tokenizer.json").write_text(json.dumps(meta, ensure_ascii=False),
                                              encoding="utf-8")
    shutil.copyfile(whisper_assets_dir() / f"{name}.tiktoken", directory / f"{name}.tiktoken")
    return meta


def write_front_end(model: Any, directory: Path) -> None:
    """The mel filter bank (whisper's ``mel_filters.npz``) and the model dimensions."""
    shutil.copyfile(whisper_assets_dir() / "mel_filters.npz", directory / "mel_filters.npz")
    dims = dict(vars(model.dims))
    (directory / "dims.json").write_text(json.dumps(dims, indent=2) + "\n", encoding="utf-8")


RUNTIME_PACKAGE = Path(__file__).parent / "runtime"
"""Front end, tokenizer, decoding, transcribe loop: copied into each version as
``stt_runtime/``."""
