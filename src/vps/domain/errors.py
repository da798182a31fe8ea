"""One error hierarchy for the whole product, free of HTTP.

Each error carries a stable machine-readable `code`; the API maps codes to status codes in
one table (`vps.api.errors`). Messages are for humans and may change; codes may not.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldProblem:
    """One offending field of a request: where it is and what is wrong with it."""

    field: str
    message: str
    code: str = "invalid"


class DomainError(Exception):
    code: str = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidParameters(DomainError):
    """The request names something that does not exist or breaks a rule."""

    code = "invalid_parameters"

    def __init__(self, problems: list[FieldProblem], message: str | None = None) -> None:
        summary = message or "; ".join(f"{p.field}: {p.message}" for p in problems)
        super().__init__(summary)
        self.problems = problems

    @classmethod
    def single(cls, field_name: str, message: str, code: str = "invalid") -> InvalidParameters:
        return cls([FieldProblem(field_name, message, code)])


class NotFound(DomainError):
    """Unknown id, or an id that belongs to another account (never reveal which)."""

    code = "not_found"


class InvalidState(DomainError):
    """The action is not allowed in the server's current status."""

    code = "invalid_state"

    def __init__(self, message: str, current_status: str) -> None:
        super().__init__(message)
        self.current_status = current_status


class InsufficientCredits(DomainError):
    code = "insufficient_credits"

    def __init__(self, required_cents: int, available_cents: int) -> None:
        from vps.domain.money import format_cents

        super().__init__(
            f"Insufficient credits: this costs {format_cents(required_cents)} "
            f"and the account has {format_cents(available_cents)}."
        )
        self.required_cents = required_cents
        self.available_cents = available_cents


class Unauthenticated(DomainError):
    """Missing, malformed, unknown, revoked or expired token."""

    code = "unauthenticated"


class Forbidden(DomainError):
    code = "forbidden"


class Conflict(DomainError):
    """A uniqueness rule would be broken (for example an account name taken)."""

    code = "conflict"


class IdempotencyKeyInUse(DomainError):
    """Another request with the same idempotency key is still being processed."""

    code = "idempotency_key_in_use"


class IdempotencyKeyReused(DomainError):
    """The idempotency key was already used for a different request."""

    code = "idempotency_key_reused"


class TooManyStreams(DomainError):
    """The account has as many event streams open (on this API process) as it may."""

    code = "too_many_streams"


class CsrfFailed(DomainError):
    """A cookie-authenticated change without the CSRF header that proves it came from the
    panel's own page (or from another origin)."""

    code = "csrf_failed"


class LocationFull(DomainError):
    """No hypervisor host of the location has room for the plan (or all are draining)."""

    code = "location_full"


class PreconditionFailed(DomainError):
    """`If-Match` names a version of the resource that is no longer current."""

    code = "precondition_failed"

    def __init__(self, message: str, current_etag: str) -> None:
        super().__init__(message)
        self.current_etag = current_etag


@dataclass(frozen=True)
class Problems:
    """Collects field problems so that one response can name them all."""

    items: list[FieldProblem] = field(default_factory=list)

    def add(self, field_name: str, message: str, code: str = "invalid") -> None:
        self.items.append(FieldProblem(field_name, message, code))

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidParameters(list(self.items))
