"""Credits: integer cents in, two-decimal strings out."""

from __future__ import annotations

import pytest

from vps.domain.money import MAX_CENTS, format_cents, parse_amount


@pytest.mark.parametrize(
    ("cents", "text"),
    [
        (0, "0.00"),
        (1, "0.01"),
        (5, "0.05"),
        (10, "0.10"),
        (99, "0.99"),
        (100, "1.00"),
        (1250, "12.50"),
        (2400, "24.00"),
        (2880, "28.80"),
        (123456789, "1234567.89"),
        (-1, "-0.01"),
        (-5, "-0.05"),
        (-1250, "-12.50"),
        (-2400, "-24.00"),
        (MAX_CENTS, "10000000000000.00"),
    ],
)
def test_format_cents(cents: int, text: str) -> None:
    assert format_cents(cents) == text


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("12.50", 1250),
        ("12.5", 1250),
        ("12", 1200),
        ("0.01", 1),
        ("0.1", 10),
        ("1000.00", 100000),
        (" 24.00 ", 2400),
        ("24.00\n", 2400),
        ("+3.00", 300),
        ("10000000000000", MAX_CENTS),
        ("10000000000000.00", MAX_CENTS),
    ],
)
def test_parse_amount(text: str, cents: int) -> None:
    assert parse_amount(text) == cents


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "not a number"),
        ("abc", "not a number"),
        ("1,00", "not a number"),
        ("12.50 EUR", "not a number"),
        ("0", "positive"),
        ("0.00", "positive"),
        ("-0", "positive"),
        ("-1", "positive"),
        ("-0.01", "positive"),
        ("NaN", "positive"),
        ("Infinity", "positive"),
        ("-Infinity", "positive"),
        ("1.001", "two decimals"),
        ("0.005", "two decimals"),
        ("12.345", "two decimals"),
        ("10000000000000.01", "too large"),
        ("1e20", "too large"),
    ],
)
def test_parse_amount_rejects(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_amount(text)


@pytest.mark.parametrize("cents", [1, 9, 10, 99, 100, 101, 2400, 2880, 123456789, MAX_CENTS])
def test_format_then_parse_round_trips(cents: int) -> None:
    assert parse_amount(format_cents(cents)) == cents
