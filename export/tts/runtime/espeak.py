"""espeak-ng phonemes through the C library (ctypes), exactly the way Piper phonemises.

Library: the espeak-ng build that ``piper-tts`` ships (``piper/espeakbridge*.so``, a
static espeak-ng 1.52 with Piper's ``espeak_TextToPhonemesWithTerminator`` and its own
``espeak-ng-data``) when that package is installed, so the phonemes are Piper's by
construction; otherwise the system ``libespeak-ng`` (Debian: 1.51), whose stock
``espeak_TextToPhonemes`` gives no terminator, so the clause's punctuation is read back
from the consumed text. ``TTS_ESPEAK_LIBRARY`` / ``TTS_ESPEAK_DATA`` override both.

As Piper does: ``(en)`` language-switch flags are removed; a clause's punctuation
(``. ? ! , : ;``) is kept as a phoneme, ``, : ;`` followed by a space; phonemes are
split into NFD code points. espeak-ng is not thread-safe: one lock guards every call.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import os
import re
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path

AUDIO_OUTPUT_SYNCHRONOUS = 2
CHARS_UTF8 = 1
PHONEMES_IPA = 0x02
# espeak-ng clause flags (translate.h): type bits and the clause kinds Piper keeps.
CLAUSE_TYPE_SENTENCE = 0x00080000
CLAUSE_KIND_MASK = 0x000FFFFF
CLAUSE_PUNCTUATION = {0x80028: ".", 0x82028: "?", 0x8302D: "!", 0x41014: ",", 0x4001E: ":",
                      0x4101E: ";"}
# Text fallback (stock library): punctuation that ends an espeak clause, as Piper names it.
TEXT_PUNCTUATION = {".": ".", "?": "?", "!": "!", ",": ",", ":": ":", ";": ";", "—": ";",
                    "。": ".", "？": "?", "！": "!", "，": ",", "：": ":", "；": ";"}
_LANGUAGE_FLAGS = re.compile(r"\([^)]+\)")
_LOCK = threading.Lock()


class EspeakError(RuntimeError):
    """espeak-ng is missing or refused a voice."""


@dataclass
class _Library:
    handle: ctypes.CDLL
    path: str
    data: str | None
    with_terminator: bool


_LOADED: _Library | None = None


def _candidates() -> list[tuple[str, str | None]]:
    env_lib = os.environ.get("TTS_ESPEAK_LIBRARY")
    if env_lib:
        return [(env_lib, os.environ.get("TTS_ESPEAK_DATA"))]
    found: list[tuple[str, str | None]] = []
    spec = importlib.util.find_spec("piper")
    if spec and spec.origin:
        package = Path(spec.origin).parent
        for lib in sorted(package.glob("espeakbridge*.so")):
            found.append((str(lib), str(package / "espeak-ng-data")))
    found.append((ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1", None))
    return found


def _library() -> _Library:
    global _LOADED
    if _LOADED is not None:
        return _LOADED
    errors = []
    for path, data in _candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError as exc:
            errors.append(f"{path}: {exc}")
            continue
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p,
                                          ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        lib.espeak_Info.restype = ctypes.c_char_p
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int,
                                              ctypes.c_int]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        with_terminator = hasattr(lib, "espeak_TextToPhonemesWithTerminator")
        if with_terminator:
            fn = lib.espeak_TextToPhonemesWithTerminator
            fn.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int,
                           ctypes.POINTER(ctypes.c_int)]
            fn.restype = ctypes.c_char_p
        if lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0,
                                 data.encode() if data else None, 0) <= 0:
            errors.append(f"{path}: espeak_Initialize failed (data {data})")
            continue
        _LOADED = _Library(lib, path, data, with_terminator)
        return _LOADED
    raise EspeakError("no usable espeak-ng library (install piper-tts or espeak-ng): "
                      + "; ".join(errors))


def describe() -> dict[str, str]:
    """Which espeak-ng phonemises here (recorded in export manifests)."""
    lib = _library()
    return {"espeak_version": (lib.handle.espeak_Info(None) or b"").decode(),
            "espeak_library": lib.path, "espeak_data": lib.data or "system"}


def clauses(text: str, voice: str) -> list[tuple[str, str, bool]]:
    """(phonemes, terminator, end_of_sentence) per espeak clause, as Piper's bridge gives."""
    data = text.encode("utf-8")
    found: list[tuple[str, str, bool]] = []
    with _LOCK:
        lib = _library()
        # Set every call: another user of the same library (piper itself) may have changed it.
        if lib.handle.espeak_SetVoiceByName(voice.encode()) != 0:
            raise EspeakError(f"espeak-ng has no voice {voice!r}")
        buffer = ctypes.create_string_buffer(data)
        start = ctypes.addressof(buffer)
        pointer = ctypes.c_void_p(start)
        while pointer.value:
            if lib.with_terminator:
                flags = ctypes.c_int(0)
                phonemes = lib.handle.espeak_TextToPhonemesWithTerminator(
                    ctypes.byref(pointer), CHARS_UTF8, PHONEMES_IPA, ctypes.byref(flags))
                terminator = CLAUSE_PUNCTUATION.get(flags.value & CLAUSE_KIND_MASK, "")
                end = (flags.value & CLAUSE_TYPE_SENTENCE) == CLAUSE_TYPE_SENTENCE
            else:
                before = pointer.value - start
                phonemes = lib.handle.espeak_TextToPhonemes(ctypes.byref(pointer), CHARS_UTF8,
                                                            PHONEMES_IPA)
                after = pointer.value - start if pointer.value else len(data)
                consumed = data[before:after].decode("utf-8", errors="ignore")
                if pointer.value:
                    consumed = consumed[:-1]  # espeak reads one character ahead
                terminator, end = _terminator_from_text(consumed, last=not pointer.value)
            found.append(((phonemes or b"").decode("utf-8"), terminator, end))
    return found


def _terminator_from_text(consumed: str, last: bool) -> tuple[str, bool]:
    tail = consumed.rstrip().rstrip("\"')]}»”’")
    if tail.endswith(("...", "…")):
        return "", False  # an ellipsis pauses without ending the sentence
    run = ""
    for char in reversed(tail):
        if char not in TEXT_PUNCTUATION:
            break
        run = char + run
    if not run:
        return "", last
    terminator = TEXT_PUNCTUATION[run[0]]  # "!?" is an exclamation, as espeak reads it
    return terminator, terminator in ".?!" or last


def phonemize(text: str, voice: str) -> list[list[str]]:
    """Text to phonemes grouped by sentence (Piper's ``EspeakPhonemizer.phonemize``)."""
    sentences: list[list[str]] = []
    current: list[str] = []
    for phonemes, terminator, end in clauses(text, voice):
        phonemes = _LANGUAGE_FLAGS.sub("", phonemes) + terminator
        if terminator in (",", ":", ";"):
            phonemes += " "
        current.extend(unicodedata.normalize("NFD", phonemes))
        if end:
            sentences.append(current)
            current = []
    if current:
        sentences.append(current)
    return sentences
