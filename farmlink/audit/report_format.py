"""How the report writes numbers: yuan with two decimals, exact quantities, seconds, counts."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from html import escape
from typing import Any

_CENT = Decimal("0.01")


def esc(value: Any) -> str:
    """Text or attribute value, escaped for HTML."""
    return escape("" if value is None else str(value), quote=True)


def yuan(fen: Any) -> str:
    """Integer (or exact decimal) fen as yuan with two decimals and thousands separators: 123456 -> 1,234.56."""
    amount = (Decimal(str(fen)) / 100).quantize(_CENT, rounding=ROUND_HALF_UP)
    return f"{amount:,.2f}"


def yuan_short(fen: Any) -> str:
    """Yuan for an axis: whole yuan from 100 up, else two decimals; thousands separators."""
    amount = Decimal(str(fen)) / 100
    if amount == 0:
        return "0"
    if abs(amount) >= 100:
        return f"{amount.quantize(Decimal(1), rounding=ROUND_HALF_UP):,f}"
    return yuan(fen)


def quantity(value: Any) -> str:
    """An exact quantity without trailing zeros, with thousands separators: 38000.500 -> 38,000.5."""
    number = value if isinstance(value, Decimal) else Decimal(str(value or 0))
    if number == number.to_integral_value():
        return f"{number.quantize(Decimal(1)):,f}"
    return f"{number.normalize():,f}"


def whole(value: Any) -> str:
    """A count with thousands separators."""
    return f"{int(value):,}"


def seconds(value: float) -> str:
    """Seconds a person reads: 0.004 -> 4 ms, 7.25 -> 7.3 s, 137.2 -> 2 min 17 s."""
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.1f} s"
    minutes, rest = divmod(round(value), 60)
    return f"{minutes} min {rest} s"


def percent(part: Any, whole_: Any) -> str:
    """part / whole as a percentage with one decimal, or an em dash when whole is 0."""
    if not whole_:
        return "—"
    return f"{(Decimal(part) * 100 / Decimal(whole_)).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)} %"


def text_width(text: str, size: float = 12) -> float:
    """A rough width in px: wide (CJK) characters count double."""
    return sum(size * (1.0 if ord(ch) > 0x2E80 else 0.58) for ch in text)


def clip(text: str, width: float, size: float = 12) -> str:
    """The text, cut with an ellipsis to fit `width` px."""
    if text_width(text, size) <= width:
        return text
    out = ""
    for ch in text:
        if text_width(out + ch + "…", size) > width:
            break
        out += ch
    return out + "…"
