"""The real Whisper tokenizer (tiktoken), rebuilt offline from exported assets.

Export writes ``tokenizer.json`` (special token ids, language tokens, the token sets
openai-whisper suppresses) computed with ``whisper.tokenizer`` itself, next to the
``.tiktoken`` rank file from whisper's assets; nothing is hard-coded here.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import tiktoken


class WhisperTokenizer:
    def __init__(self, directory: str | Path) -> None:
        directory = Path(directory)
        meta = json.loads((directory / "tokenizer.json").read_text(encoding="utf-8"))
        ranks_file = directory / meta["tiktoken_file"]
        ranks = {}
        for line in ranks_file.read_text(encoding="utf-8").splitlines():
            if line:
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
        self.encoding = tiktoken.Encoding(
            name=meta["encoding"], explicit_n_vocab=meta["n_vocab"], pat_str=meta["pat_str"],
            mergeable_ranks=ranks, special_tokens=meta["special_tokens"])
        self.multilingual: bool = meta["multilingual"]
        ids = meta["ids"]
        self.sot: int = ids["sot"]
        self.eot: int = ids["eot"]
        self.sot_prev: int = ids["sot_prev"]
        self.sot_lm: int = ids["sot_lm"]
        self.no_speech: int | None = ids["no_speech"]
        self.no_timestamps: int = ids["no_timestamps"]
        self.timestamp_begin: int = ids["timestamp_begin"]
        self.transcribe: int = ids["transcribe"]
        self.translate: int = ids["translate"]
        self.languages: dict[str, int] = meta["languages"]
        """language code -> language token id (the model's languages, in order)."""
        self.language_aliases: dict[str, str] = meta["language_aliases"]
        self.non_speech_tokens: list[int] = meta["non_speech_tokens"]
        self.blank_tokens: list[int] = meta["blank_tokens"]

    def encode(self, text: str) -> list[int]:
        # Special-token text in a user prompt is encoded as plain text (whisper would
        # raise); it can never inject control tokens.
        return self.encoding.encode(text, disallowed_special=())

    def decode(self, tokens: list[int]) -> str:
        return self.encoding.decode([t for t in tokens if t < self.timestamp_begin])

    def language_code(self, language: str) -> str:
        """Normalise a code or an English language name; ValueError when unsupported."""
        lowered = language.strip().lower()
        if lowered in self.languages:
            return lowered
        if lowered in self.language_aliases and self.language_aliases[lowered] in self.languages:
            return self.language_aliases[lowered]
        raise ValueError(f"unsupported language {language!r}")

    def sot_sequence(self, language: str | None, task: str) -> list[int]:
        """Start-of-transcript tokens (English-only models: just <|startoftranscript|>)."""
        if not self.multilingual:
            return [self.sot]
        sequence = [self.sot, self.languages[language or "en"]]
        sequence.append(self.translate if task == "translate" else self.transcribe)
        return sequence

    def suppress_tokens(self) -> list[int]:
        """What DecodingOptions(suppress_tokens="-1") suppresses at every step."""
        tokens = set(self.non_speech_tokens)
        tokens.update([self.transcribe, self.translate, self.sot, self.sot_prev, self.sot_lm])
        if self.no_speech is not None:
            tokens.add(self.no_speech)
        return sorted(tokens)
