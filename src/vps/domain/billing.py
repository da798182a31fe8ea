"""Billing periods and proration: pure rules, no I/O.

A server is paid for in advance, one period at a time. Its current paid period is
`[paid_from, paid_until)`; the create charges the first, the worker charges each next one
when `paid_until` comes, and a delete refunds the whole hours of the current period that are
left. Amounts are integer cents; a refund is rounded down to the cent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

DEFAULT_PERIOD = timedelta(days=30)
HOUR = timedelta(hours=1)
_MICROSECOND = timedelta(microseconds=1)

# `error_code` of a server suspended because its account could not pay its next period.
PAYMENT_REQUIRED = "payment_required"


@dataclass(frozen=True)
class BillingTerms:
    """How long "a month" is. Built once from the settings and passed down."""

    period: timedelta = DEFAULT_PERIOD

    def __post_init__(self) -> None:
        if self.period <= timedelta(0):
            raise ValueError("a billing period must be longer than zero")

    @classmethod
    def from_seconds(cls, seconds: float) -> BillingTerms:
        return cls(timedelta(seconds=seconds))


def unused_hours(period_start: datetime, period_end: datetime, now: datetime) -> int:
    """Whole hours of `[period_start, period_end)` still ahead of `now`, rounded down.

    Before the period starts the whole period is unused; after it ends nothing is.
    """
    if now >= period_end or period_end <= period_start:
        return 0
    return (period_end - max(now, period_start)) // HOUR


def prorated_refund(
    charged_cents: int, period_start: datetime, period_end: datetime, now: datetime
) -> int:
    """The share of a period's charge that its whole unused hours are worth, in cents.

    `charged_cents * unused_hours / period_hours`, rounded down, and never more than
    `charged_cents` (nor less than zero). A period shorter than an hour has no whole hour to
    refund.
    """
    if charged_cents <= 0:
        return 0
    hours = unused_hours(period_start, period_end, now)
    if hours <= 0:
        return 0
    length = (period_end - period_start) // _MICROSECOND
    refund = charged_cents * hours * (HOUR // _MICROSECOND) // length
    return max(0, min(charged_cents, refund))
