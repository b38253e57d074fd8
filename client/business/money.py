"""Amounts as people type them ("12.50") and as the relay keeps them (integer micro-units)."""

from decimal import Decimal, InvalidOperation

MICRO = 1_000_000


def parse_amount(text: str) -> int:
    """``"12.5"`` -> 12_500_000. Refuses negatives, garbage and sub-micro precision."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation as exc:
        raise ValueError(f"'{text}' is not an amount; write e.g. 25 or 12.50") from exc
    if not value.is_finite() or value < 0:
        raise ValueError(f"the amount must be zero or more, got {text}")
    micro = value * MICRO
    if micro != micro.to_integral_value():
        raise ValueError(f"'{text}' has more than 6 decimals")
    return int(micro)


def format_amount(micro: int, currency: str = "") -> str:
    """12_500_000 -> "12.50", 122_000 -> "0.122": cents always, more decimals only if needed."""
    value = Decimal(micro) / MICRO
    text = f"{value:,.6f}".rstrip("0")
    if len(text.partition(".")[2]) < 2:
        text = f"{value:,.2f}"
    return f"{text} {currency}".strip()
