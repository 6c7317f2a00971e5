"""Korean number words: Sino-Korean (일, 이, 삼 …) and native (하나, 둘 …) numerals."""

from __future__ import annotations

SINO_DIGITS = ["영", "일", "이", "삼", "사", "오", "육", "칠", "팔", "구"]
SMALL_UNITS = [(1000, "천"), (100, "백"), (10, "십")]
BIG_UNITS = [(10**12, "조"), (10**8, "억"), (10**4, "만")]
NATIVE_ONES = ["", "하나", "둘", "셋", "넷", "다섯", "여섯", "일곱", "여덟", "아홉"]
NATIVE_ONES_ATTRIBUTIVE = ["", "한", "두", "세", "네", "다섯", "여섯", "일곱", "여덟", "아홉"]
NATIVE_TENS = ["", "열", "스물", "서른", "마흔", "쉰", "예순", "일흔", "여든", "아흔"]
# Month names that drop a consonant: 6월 is 유월, 10월 is 시월.
MONTHS = {6: "유월", 10: "시월"}


def _below_10000(n: int) -> str:
    words = ""
    for value, unit in SMALL_UNITS:
        digit, n = divmod(n, value)
        if digit:
            words += ("" if digit == 1 else SINO_DIGITS[digit]) + unit  # 일십 -> 십
    if n:
        words += SINO_DIGITS[n]
    return words


def sino(n: int) -> str:
    """Sino-Korean reading: 2024 -> 이천이십사, 10000 -> 만, 0 -> 영."""
    if n < 0:
        return "마이너스 " + sino(-n)
    if n == 0:
        return "영"
    if n >= 10**16:  # past 조: read the digits one by one, as for phone numbers
        return "".join(SINO_DIGITS[int(d)] for d in str(n))
    words = ""
    for value, unit in BIG_UNITS:
        part, n = divmod(n, value)
        if part:
            words += ("" if part == 1 and unit == "만" else _below_10000(part)) + unit
    return words + _below_10000(n)


def native(n: int, attributive: bool = False) -> str | None:
    """Native Korean reading for 1..99 (None above: counters then use Sino-Korean).

    ``attributive`` is the form before a counter: 한 개, 두 시, 스무 살.
    """
    if not 1 <= n <= 99:
        return None
    tens, ones = divmod(n, 10)
    if attributive:
        if ones == 0 and tens == 2:
            return "스무"
        return NATIVE_TENS[tens] + NATIVE_ONES_ATTRIBUTIVE[ones]
    return NATIVE_TENS[tens] + NATIVE_ONES[ones]


def month(n: int) -> str:
    return MONTHS.get(n, sino(n) + "월")


def decimal(text: str) -> str:
    """'3.14' -> 삼 점 일사."""
    whole, _, frac = text.partition(".")
    words = sino(int(whole or "0"))
    if frac:
        words += " 점 " + "".join(SINO_DIGITS[int(d)] for d in frac)
    return words
