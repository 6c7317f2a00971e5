"""Text normalisation before phonemes: numbers, dates, times and currency as words.

English and Korean; other languages pass through (espeak-ng reads digits itself).
Rules run in order, most specific first (a date before its numbers, a time before its
digits), and each rewrites only what it matches, so unknown text is never lost.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from . import numbers_en as en
from . import numbers_ko as ko

MONTH_NAMES = ["January", "February", "March", "April", "May", "June", "July", "August",
               "September", "October", "November", "December"]
HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]


def language_of(text: str, default: str = "en") -> str:
    """``ko`` when the text has Hangul, else ``default``."""
    return "ko" if HANGUL.search(text) else default


def normalize(text: str, language: str) -> str:
    """Numbers, dates, times and currency as words (``language``: en, ko; others unchanged)."""
    text = unicodedata.normalize("NFC", text)
    rules = {"en": EN_RULES, "ko": KO_RULES}.get(language.split("-")[0].split("_")[0].lower())
    if rules is None:
        return text
    for pattern, replace in rules:
        text = pattern.sub(replace, text)
    return re.sub(r"[ \t]+", " ", text).strip()


def _int(digits: str) -> int:
    return int(digits.replace(",", ""))


# --- English ----------------------------------------------------------------------------

EN_CURRENCY = {"$": ("dollar", "dollars", "cent", "cents"), "€": ("euro", "euros", "cent", "cents"),
               "£": ("pound", "pounds", "penny", "pence"), "¥": ("yen", "yen", "", ""),
               "₩": ("won", "won", "", "")}


def _en_date(year: str, month: str, day: str) -> str | None:
    m, d = int(month), int(day)
    if not (1 <= m <= 12 and 1 <= d <= 31):
        return None
    return f"{MONTH_NAMES[m - 1]} {en.ordinal(d)}, {en.year(int(year))}"


def _en_iso_date(m: re.Match[str]) -> str:
    return _en_date(m[1], m[2], m[3]) or m[0]


def _en_month_day(m: re.Match[str]) -> str:
    words = f"{m[1]} {en.ordinal(int(m[2]))}"
    return words + (f", {en.year(int(m[3]))}" if m[3] else "")


def _en_time(m: re.Match[str]) -> str:
    hour, minute, suffix = int(m[1]), int(m[2]), (m[3] or "").lower()
    if hour > 24 or minute > 59:
        return m[0]
    words = en.cardinal(hour)
    if minute:
        words += " " + (("oh " if minute < 10 else "") + en.cardinal(minute))
    elif not suffix:
        words += " o'clock"
    if suffix:
        words += f" {suffix} m"  # "p m": letters read one by one
        rest = m.string[m.end():]
        if m[0].endswith(".") and (not rest.strip() or rest.lstrip()[:1].isupper()):
            words += "."  # "9 p.m." ending a sentence keeps its full stop
    return words


def _en_currency(m: re.Match[str]) -> str:
    one, many, sub_one, sub_many = EN_CURRENCY[m[1]]
    amount, cents, scale = _int(m[2]), m[3], m[4]
    if scale:  # "$2.5 million" -> two point five million dollars
        number = en.decimal(f"{amount}.{cents}") if cents else en.cardinal(amount)
        return f"{number} {scale.lower()} {many}"
    words = f"{en.cardinal(amount)} {one if amount == 1 else many}"
    if cents and int(cents.ljust(2, "0")) and sub_one:
        c = int(cents.ljust(2, "0"))
        words += f" and {en.cardinal(c)} {sub_one if c == 1 else sub_many}"
    return words


def _en_year_context(m: re.Match[str]) -> str:
    return f"{m[1]} {en.year(int(m[2]))}"


EN_RULES: list[Rule] = [
    (re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b"), _en_iso_date),
    (re.compile(r"\b(" + "|".join(MONTH_NAMES) + r")\s+(\d{1,2})(?:st|nd|rd|th)?\b"
                r"(?:,?\s+(\d{4})\b)?"), _en_month_day),
    (re.compile(r"\b(\d{1,2}):(\d{2})(?:\s*([ap])\.?m\.?(?=\W|$))?", re.IGNORECASE), _en_time),
    (re.compile(r"([$€£¥₩])\s?(\d[\d,]*)(?:\.(\d{1,2}))?(?:\s+(million|billion|trillion)\b)?",
                re.IGNORECASE), _en_currency),
    (re.compile(r"(\d+(?:\.\d+)?)\s?%"), lambda m: f"{en.decimal(m[1])} percent"),
    (re.compile(r"\b(\d+)(?:st|nd|rd|th)\b"), lambda m: en.ordinal(int(m[1]))),
    (re.compile(r"\b(in|since|from|until|by|year)\s+(1[1-9]\d\d|20\d\d)\b", re.IGNORECASE),
     _en_year_context),
    (re.compile(r"(?<![\w.])-(?=\d)"), lambda m: "minus "),
    (re.compile(r"\b\d+\.\d+\b"), lambda m: en.decimal(m[0])),
    (re.compile(r"\b\d{1,3}(?:,\d{3})+\b|\b\d+\b"), lambda m: en.cardinal(_int(m[0]))),
    (re.compile(r"\s*&\s*"), lambda m: " and "),
]


# --- Korean -----------------------------------------------------------------------------

KO_CURRENCY_PREFIX = {"$": "달러", "€": "유로", "£": "파운드", "¥": "엔", "₩": "원"}
# Counters read with native numerals (한 개, 두 명, 세 시); everything else is Sino-Korean.
KO_NATIVE_COUNTERS = "시간|시|개|명|살|마리|잔|권|벌|장|그릇|켤레|번(?![지호])"


# Units written after a number, read as Korean says them (LLM replies write "1.5kg",
# "20°C", "3km"; the voice would otherwise spell the letters or skip the sign). Only
# after a digit, so English words are left alone; longest first (km before m).
KO_UNITS = {"kWh": "킬로와트시", "kg": "킬로그램", "km": "킬로미터", "cm": "센티미터",
            "mm": "밀리미터", "mg": "밀리그램", "ms": "밀리초", "ml": "밀리리터", "mL": "밀리리터",
            "GB": "기가바이트", "MB": "메가바이트", "TB": "테라바이트", "°C": "도",
            "℃": "도", "°": "도", "kW": "킬로와트", "g": "그램", "m": "미터", "L": "리터",
            "l": "리터"}
KO_UNIT = re.compile(r"(?<=\d)\s?(" + "|".join(sorted(map(re.escape, KO_UNITS), key=len,
                                                      reverse=True)) + r")(?![A-Za-z])")


def _ko_amount(digits: str, fraction: str | None) -> str:
    return ko.decimal(f"{_int(digits)}.{fraction}") if fraction else ko.sino(_int(digits))


def _ko_date(year: str | None, month: str, day: str) -> str:
    parts = [ko.sino(int(year)) + "년"] if year else []
    return " ".join([*parts, ko.month(int(month)), ko.sino(int(day)) + "일"])


def _ko_native(m: re.Match[str]) -> str:
    n = _int(m[1])
    words = ko.native(n, attributive=True) or ko.sino(n)
    return f"{words} {m[2]}"


def _ko_currency(m: re.Match[str]) -> str:
    unit = KO_CURRENCY_PREFIX[m[1]]
    words = f"{ko.sino(_int(m[2]))} {unit}"
    cents = int((m[3] or "0").ljust(2, "0"))
    if cents and m[1] in "$€":  # $5.50 -> 오 달러 오십 센트
        words += f" {ko.sino(cents)} 센트"
    return words


def _ko_time(m: re.Match[str]) -> str:
    hour, minute = int(m[1]), int(m[2])
    if hour > 24 or minute > 59:
        return m[0]
    words = f"{ko.native(hour, attributive=True) or ko.sino(hour)} 시"
    return words + (f" {ko.sino(minute)} 분" if minute else "")


KO_RULES: list[Rule] = [
    (KO_UNIT, lambda m: " " + KO_UNITS[m[1]]),
    (re.compile(r"(\d{4})[-./](\d{1,2})[-./](\d{1,2})"), lambda m: _ko_date(m[1], m[2], m[3])),
    (re.compile(r"(\d+)\s*년"), lambda m: ko.sino(int(m[1])) + "년"),
    (re.compile(r"(\d{1,2})\s*월"), lambda m: ko.month(int(m[1]))),
    (re.compile(r"(\d{1,2}):(\d{2})"), _ko_time),
    (re.compile(r"(\d[\d,]*)\s*(" + KO_NATIVE_COUNTERS + ")"), _ko_native),
    (re.compile(r"(\d+)\s*(분|초)"), lambda m: f"{ko.sino(int(m[1]))} {m[2]}"),
    (re.compile(r"([$€£¥₩])\s?(\d[\d,]*)(?:\.(\d{1,2}))?"), _ko_currency),
    (re.compile(r"(\d[\d,]*)(?:\.(\d+))?\s*(원|달러|유로|엔|파운드)"),
     lambda m: f"{_ko_amount(m[1], m[2])} {m[3]}"),
    (re.compile(r"(\d+(?:\.\d+)?)\s?%"), lambda m: f"{ko.decimal(m[1])} 퍼센트"),
    (re.compile(r"(?<![\w.])-(?=\d)"), lambda m: "마이너스 "),
    (re.compile(r"\d+\.\d+"), lambda m: ko.decimal(m[0])),
    (re.compile(r"\d{1,3}(?:,\d{3})+|\d+"), lambda m: ko.sino(_int(m[0]))),
]
