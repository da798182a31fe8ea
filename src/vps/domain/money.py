"""Credits are counted in integer cents; they are shown as decimal strings ("12.50")."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

MAX_CENTS = 10**15


def format_cents(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


def parse_amount(text: str, *, allow_zero: bool = False) -> int:
    """Parse a positive (or, with `allow_zero`, non-negative) decimal amount with at most
    two decimals into cents."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"not a number: {text!r}") from None
    if not value.is_finite() or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(
            f"the amount must be a {'non-negative' if allow_zero else 'positive'} number"
        )
    if value != value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP):
        raise ValueError("the amount has more than two decimals")
    cents = int(value * 100)
    if cents > MAX_CENTS:
        raise ValueError("the amount is too large")
    return cents
