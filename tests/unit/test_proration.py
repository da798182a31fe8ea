"""Proration of a deleted server's period: whole unused hours, rounded down, never more than
the period cost; and the billing terms that say how long a period is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from vps.config import Settings
from vps.domain.billing import DEFAULT_PERIOD, BillingTerms, prorated_refund, unused_hours

START = datetime(2026, 1, 1, tzinfo=UTC)
MONTH = timedelta(days=30)
END = START + MONTH
HOUR = timedelta(hours=1)


def refund(price: int, after: timedelta, period: timedelta = MONTH) -> int:
    return prorated_refund(price, START, START + period, START + after)


def test_a_month_is_720_hours_by_default() -> None:
    assert DEFAULT_PERIOD == MONTH
    assert BillingTerms().period == MONTH
    assert unused_hours(START, END, START) == 720


@pytest.mark.parametrize(
    ("after", "hours"),
    [
        (timedelta(0), 720),
        (timedelta(microseconds=1), 719),
        (timedelta(minutes=59, seconds=59), 719),
        (HOUR, 719),
        (HOUR + timedelta(microseconds=1), 718),
        (timedelta(hours=100, minutes=30), 619),
        (MONTH - HOUR, 1),
        (MONTH - HOUR + timedelta(seconds=1), 0),
        (MONTH - timedelta(seconds=1), 0),
        (MONTH, 0),
        (MONTH + timedelta(days=3), 0),
        # Before the period starts (a clock a little behind): the whole period is unused.
        (-timedelta(hours=5), 720),
    ],
)
def test_unused_hours_are_whole_hours_rounded_down(after: timedelta, hours: int) -> None:
    assert unused_hours(START, END, START + after) == hours


@pytest.mark.parametrize(
    ("price", "after", "expected"),
    [
        # Deleted at once: nothing was used, all of it comes back.
        (2400, timedelta(0), 2400),
        # One second in: the hour that started is used; 719/720 of 24.00 is 23.9666...
        (2400, timedelta(seconds=1), 2396),
        (2400, HOUR, 2396),
        (2400, timedelta(hours=2), 2393),
        # Exact: 720 divides 2880 * 619.
        (2880, timedelta(hours=100, minutes=30), 2476),
        (600, timedelta(hours=360), 300),
        (600, timedelta(hours=719), 0),  # 600 / 720 = 0.83 cent: rounds down to nothing
        (4800, MONTH - HOUR, 6),  # one hour of 48.00 is 6.66 cents
        (4800, MONTH, 0),
        (4800, MONTH + HOUR, 0),
        (1, timedelta(0), 1),
        (1, HOUR, 0),
    ],
)
def test_refund_is_the_price_of_the_unused_hours_rounded_down(
    price: int, after: timedelta, expected: int
) -> None:
    assert refund(price, after) == expected


def test_refund_is_exact_in_integers_for_large_amounts() -> None:
    price = 10**15 + 7
    assert refund(price, timedelta(0)) == price
    assert refund(price, HOUR) == price * 719 // 720
    assert refund(price, timedelta(hours=719)) == price // 720


def test_refund_never_exceeds_what_was_charged_nor_goes_negative() -> None:
    # Before the period (clock skew) is capped at the full price.
    assert refund(2400, -timedelta(days=10)) == 2400
    assert refund(0, timedelta(0)) == 0
    assert refund(-500, timedelta(0)) == 0
    # An empty or backwards period refunds nothing.
    assert prorated_refund(2400, START, START, START) == 0
    assert prorated_refund(2400, END, START, START) == 0


def test_refund_falls_hour_by_hour_and_stays_between_zero_and_the_price() -> None:
    previous = refund(2880, timedelta(0))
    for minutes in range(0, 30 * 24 * 60 + 120, 17):
        current = refund(2880, timedelta(minutes=minutes))
        assert 0 <= current <= previous <= 2880
        hours_left = max(0, 720 - (minutes + 59) // 60)
        assert current == 2880 * hours_left // 720
        previous = current


@pytest.mark.parametrize(
    ("period", "after", "expected"),
    [
        # A period of an hour and a half: one whole hour of 1.5 is two thirds.
        (timedelta(minutes=90), timedelta(0), 1600),
        (timedelta(minutes=90), timedelta(minutes=29), 1600),
        (timedelta(minutes=90), timedelta(minutes=31), 0),
        # Shorter than an hour (tests compress periods to seconds): no whole hour to refund.
        (timedelta(seconds=30), timedelta(0), 0),
        (timedelta(hours=1), timedelta(0), 2400),
        # A week: 168 hours.
        (timedelta(days=7), timedelta(hours=1), 2400 * 167 // 168),
    ],
)
def test_other_period_lengths(period: timedelta, after: timedelta, expected: int) -> None:
    assert refund(2400, after, period) == expected


def test_terms_refuse_an_empty_period() -> None:
    assert BillingTerms.from_seconds(60).period == timedelta(seconds=60)
    for seconds in (0, -1):
        with pytest.raises(ValueError, match="longer than zero"):
            BillingTerms.from_seconds(seconds)


def test_the_setting_defaults_to_30_days_and_must_be_positive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("VPS_BILLING_PERIOD_SECONDS", raising=False)
    assert Settings().billing_period_seconds == 2_592_000
    monkeypatch.setenv("VPS_BILLING_PERIOD_SECONDS", "90")
    assert Settings().billing_period_seconds == 90
    for bad in ("0", "-5", "1.5", "month"):
        monkeypatch.setenv("VPS_BILLING_PERIOD_SECONDS", bad)
        with pytest.raises(ValidationError):
            Settings()
