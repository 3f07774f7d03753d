"""Text helpers."""

from __future__ import annotations

SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}


def truncate(text: str, width: int, ellipsis: str = "…") -> str:
    """``text`` cut to at most ``width`` characters, ending with ``ellipsis`` when cut."""
    if width < len(ellipsis):
        raise ValueError(f"width {width} is shorter than the ellipsis {ellipsis!r}")
    if len(text) <= width:
        return text
    return text[: width - len(ellipsis)].rstrip() + ellipsis


def format_cents(cents: int, currency: str = "USD") -> str:
    """``123456`` -> ``"$1,234.56"``; negative amounts get a leading minus."""
    sign = "-" if cents < 0 else ""
    units, rest = divmod(abs(cents), 100)
    symbol = SYMBOLS.get(currency, currency + " ")
    return f"{sign}{symbol}{units:,}.{rest:02d}"
