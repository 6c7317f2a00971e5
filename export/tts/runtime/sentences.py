"""Sentence splitting for streaming: each sentence is synthesised and sent on its own.

Splits after ``. ! ? …`` followed by a space or the end, after the full-width ``。！？``
(no space needed: CJK text has none), and at line breaks; closing quotes and brackets
stay with their sentence. A full stop after a known abbreviation (Mr., Dr., e.g.) or a
single capital (J. Smith) does not end a sentence, nor does a mark followed by a
lower-case word. Korean sentences end with the same marks (…다. …요?), and also without
them: an LLM often writes "네 알겠어요 내일 세 시에 만나요" with spaces only. A Korean word
in a sentence-final form followed by a space and another word ends a sentence too
(:data:`KOREAN_ENDING`: polite 요, formal ㅂ니다 / ㅂ니까, 죠, the plain past and present 었다,
한다…, the question ㄹ까); endings that also join clauses (고, 서, 지만) or words
(보다, 필요) do not.

This is the one sentence splitter of the project: the orchestrator's streaming chunker
(``orchestrator/realtime/sentences.py``) cuts LLM text with :func:`split_complete`, so
the sentences it sends to the tts model are the ones the model would cut itself.
"""

from __future__ import annotations

import re

ABBREVIATIONS = frozenset([
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "etc", "e.g", "i.e", "a.m",
    "p.m", "no", "fig", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct",
    "nov", "dec", "inc", "ltd", "co", "corp", "approx", "dept"])
_CLOSERS = "[\"'”’)\\]»]*"


def _syllables_ending_in(final: int) -> str:
    """A regex class of the Hangul syllables whose final consonant has index ``final``."""
    return "[" + "".join(chr(0xAC00 + start + final) for start in range(0, 11172, 28)) + "]"


KOREAN_ENDING = ("(?<![필중주수강])요"  # 해요체 (not 필요, 중요, 주요, 수요, 강요)
                 f"|{_syllables_ending_in(17)}니[다까]"  # ㅂ니다 / ㅂ니까: 합니다, 입니까
                 "|죠"
                 f"|(?:{_syllables_ending_in(20)}|{_syllables_ending_in(4)})다"  # 갔다, 한다
                 # the plain question ㄹ까 after a stem: 먹을까, 가볼까 (not 할까 말까)
                 f"|(?<=[\uac00-\ud7a3]){_syllables_ending_in(8)}까")
_KOREAN_END = rf"(?:{KOREAN_ENDING})(?=\s+[\uac00-\ud7a3A-Za-z0-9])"
_BOUNDARY = re.compile(rf"([.!?…]+{_CLOSERS})(\s+|$)|([。！？]+{_CLOSERS})(\s*)|\n\s*"
                       rf"|(?P<korean>{_KOREAN_END})\s+")


def split_complete(text: str, *, final: bool = False) -> tuple[list[str], str]:
    """The sentences ``text`` completes, and the rest after them.

    Streaming (``final=False``): a boundary at the very end of ``text`` is undecided (the
    next characters may continue the sentence, as in "e.g." + " this"), so it stays in
    the rest. ``final``: the text is whole and its end ends the last sentence.
    """
    sentences: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        mark = match.group(1) or match.group(3)
        if not final and match.group(1) and match.end() == len(text):
            break  # what follows decides
        if match.group("korean"):  # a Korean final ending: the word stays whole
            end = match.end("korean")
        else:
            end = match.end(1) if match.group(1) else match.end(3) if mark else match.start()
        candidate = text[start:end]
        if mark and mark.startswith(".") and _abbreviation(candidate):
            continue
        if mark and text[match.end():match.end() + 1].islower():
            continue  # "Yes… maybe", "e.g. this": the sentence goes on
        if candidate.strip():
            sentences.append(candidate.strip())
        start = match.end()
    return sentences, text[start:]


MAX_SENTENCE_CHARS = 300
"""Longest piece synthesised at once. VITS memory grows with the square of the input, so
a 3,000-character run-on "sentence" took 4 GB (and the model's memory stayed there): a
longer sentence is cut at its last clause mark (, ; : –) or space before the limit."""
_CLAUSE = re.compile(r"[,;:–—]\s")


def split_sentences(text: str) -> list[str]:
    """Non-empty sentences of ``text``, in order, stripped; none longer than
    MAX_SENTENCE_CHARS."""
    sentences, rest = split_complete(text, final=True)
    whole = sentences + ([rest.strip()] if rest.strip() else [])
    return [piece for sentence in whole for piece in _cap(sentence)]


def _cap(sentence: str) -> list[str]:
    pieces = []
    while len(sentence) > MAX_SENTENCE_CHARS:
        head = sentence[:MAX_SENTENCE_CHARS]
        clauses = [m.end() for m in _CLAUSE.finditer(head)]
        cut = clauses[-1] if clauses and clauses[-1] > MAX_SENTENCE_CHARS // 3 else \
            head.rfind(" ") + 1 or MAX_SENTENCE_CHARS
        pieces.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    return pieces + ([sentence] if sentence else [])


def _abbreviation(candidate: str) -> bool:
    words = candidate.rstrip(".").split()
    if not words:
        return False
    last = words[-1].lower().lstrip("(\"'")
    return last in ABBREVIATIONS or (len(last) == 1 and last.isalpha() and
                                     words[-1][-1].isupper())
