"""The API contract. These classes are the spec's bodies; table models live in `vps.db`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, field_validator
from pydantic_core import PydanticCustomError

from vps.domain.validation import (
    HOSTNAME_MAX_LENGTH,
    HOSTNAME_PATTERN,
    NAME_MAX_LENGTH,
    NAME_PATTERN,
)


def format_timestamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


Timestamp = Annotated[
    datetime,
    PlainSerializer(format_timestamp, return_type=str, when_used="json"),
    Field(description="ISO 8601, UTC, ending in Z", examples=["2025-01-10T14:30:00Z"]),
]
Money = Annotated[str, Field(description="Credits, a decimal with two places", examples=["24.00"])]


class StrictInput(BaseModel):
    """Request bodies: exact JSON types (no "1" for 1), unknown fields rejected, and no NUL
    characters in text (no database stores them faithfully)."""

    model_config = ConfigDict(strict=True, extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            raise PydanticCustomError("nul_character", "Must not contain NUL characters.")
        return value


# Responses ------------------------------------------------------------------------------


class PlanSummary(BaseModel):
    id: int
    name: str
    vcpus: int
    memory: int = Field(description="MB")
    storage: int = Field(description="GB")
    bandwidth: int = Field(description="GB per month")


class OsSummary(BaseModel):
    id: int
    name: str


class ResourceUsageOut(BaseModel):
    cpu_percent: float
    memory_used: int = Field(description="MB")
    disk_used: int = Field(description="GB")
    bandwidth_used: int = Field(description="GB this month")


class ServerErrorInfo(BaseModel):
    code: str
    message: str


class ServerOut(BaseModel):
    id: int
    name: str
    hostname: str | None
    status: str = Field(
        examples=["active"],
        description="provisioning, active, starting, stopping, stopped, rebooting, "
        "suspended or error",
    )
    ip_address: str | None = Field(description="IPv4; null until provisioned")
    ipv6_address: str | None = Field(description="null until provisioned")
    location: str
    plan: PlanSummary
    os: OsSummary
    backups_enabled: bool
    resource_usage: ResourceUsageOut
    error: ServerErrorInfo | None = Field(
        default=None,
        description="Why the server is in `error` or `suspended` (`payment_required`: "
        "top up the account's credits to resume it); null otherwise",
    )
    created_at: Timestamp
    updated_at: Timestamp


class ActionError(BaseModel):
    code: str
    message: str


class ActionOut(BaseModel):
    id: int
    kind: Literal["create", "start", "stop", "reboot", "delete"]
    status: Literal["running", "succeeded", "failed"]
    server_id: int
    started_at: Timestamp
    finished_at: Timestamp | None
    error: ActionError | None
    progress: int = Field(
        ge=0,
        le=100,
        description="Percent done: 0 while `running`, 100 once finished (`succeeded` or "
        "`failed`). No estimate in between: poll until `finished_at` is set.",
        examples=[0, 100],
    )


class ServerCreated(ServerOut):
    message: str
    action: ActionOut


class ServerList(BaseModel):
    count: int = Field(description="Total number of matching servers, on every page")
    next: str | None
    previous: str | None
    results: list[ServerOut]


class ServerBrief(BaseModel):
    id: int
    name: str
    status: str


class PowerActionOut(BaseModel):
    status: Literal["success"]
    message: str
    server: ServerBrief
    action: ActionOut


class PlanOut(PlanSummary):
    monthly_price: Money
    backups_monthly_price: Money


class OsOut(OsSummary):
    """An operating system of the catalog (named like `PlanOut` and `LocationOut`, so that
    tools that match `os_id` to the resource that lists it find it)."""


class LocationOut(BaseModel):
    code: str
    name: str


class SshKeyOut(BaseModel):
    id: int
    name: str
    public_key: str
    fingerprint: str
    created_at: Timestamp


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    count: int
    next: str | None
    previous: str | None
    results: list[T]


class LedgerEntryOut(BaseModel):
    id: int
    kind: Literal["topup", "charge", "refund"]
    amount: Money
    balance_after: Money
    server_id: int | None
    description: str
    created_at: Timestamp


class AccountOut(BaseModel):
    id: int
    name: str
    balance: Money
    recent_transactions: list[LedgerEntryOut]


class FieldError(BaseModel):
    field: str = Field(examples=["name"])
    code: str = Field(examples=["invalid", "required", "wrong_type", "unknown_field"])
    message: str


class ErrorDetail(BaseModel):
    code: str = Field(
        examples=["invalid_parameters"],
        description="Stable, machine-readable: invalid_parameters, malformed_json, "
        "unauthenticated, forbidden, insufficient_credits, not_found, invalid_state, "
        "conflict, method_not_allowed, service_unavailable, location_full, internal_error",
    )
    message: str
    request_id: str
    fields: list[FieldError] | None = Field(default=None, description="On 400: what is wrong")
    required: Money | None = Field(default=None, description="On 402: the price")
    available: Money | None = Field(default=None, description="On 402: the balance")
    current_status: str | None = Field(default=None, description="On invalid_state")


class ErrorResponse(BaseModel):
    error: ErrorDetail


# Requests -------------------------------------------------------------------------------

# The rules the services enforce, published in the OpenAPI document only: validating them
# here too would answer pydantic's wording instead of the services' messages, which name
# the rule that was broken.
_NAME_RULES: dict[str, Any] = {
    "minLength": 1,
    "maxLength": NAME_MAX_LENGTH,
    "pattern": NAME_PATTERN,
    "description": "Letters, digits and hyphens; no hyphen at either end",
}
_HOSTNAME_RULES: dict[str, Any] = {
    "maxLength": HOSTNAME_MAX_LENGTH,
    "pattern": HOSTNAME_PATTERN,
    "description": "A fully qualified domain name (RFC 1123)",
}


def _never_null(json_type: str, rules: dict[str, Any] | None = None) -> Any:
    """The schema of an optional field that may be left out but not sent as null."""

    def edit(schema: dict[str, Any]) -> None:
        schema.pop("anyOf", None)
        schema.pop("default", None)
        schema["type"] = json_type
        schema.update(rules or {})

    return edit


# What `str.strip()` removes, spelled out: JSON Schema's `\\s` (ECMA-262) is another set (it
# lacks U+0085 and has U+FEFF), so a name of those alone would be valid to one and blank to
# the other.
BLANK_CHARACTERS = (
    "\\u0009-\\u000d\\u001c-\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a"
    "\\u2028\\u2029\\u202f\\u205f\\u3000"
)
# Not blank, and no NUL character (see `StrictInput`).
_KEY_NAME_RULES: dict[str, Any] = {
    "minLength": 1,
    "maxLength": 100,
    "pattern": f"^[^\\u0000]*[^{BLANK_CHARACTERS}\\u0000][^\\u0000]*$",
}


class CreateServerIn(StrictInput):
    name: str = Field(examples=["web-server-02"], json_schema_extra=_NAME_RULES)
    plan_id: int = Field(examples=[1])
    os_id: int = Field(examples=[5])
    location: str = Field(examples=["us-west"])
    hostname: str | None = Field(
        default=None, examples=["web02.example.com"], json_schema_extra=_HOSTNAME_RULES
    )
    ssh_key_id: int | None = None
    backups_enabled: bool = False


class ReplaceServerIn(StrictInput):
    name: str = Field(examples=["web-server-updated"], json_schema_extra=_NAME_RULES)
    hostname: str = Field(examples=["web-updated.example.com"], json_schema_extra=_HOSTNAME_RULES)
    backups_enabled: bool


class PatchServerIn(StrictInput):
    name: str | None = Field(
        default=None,
        examples=["new-server-name"],
        json_schema_extra=_never_null("string", _NAME_RULES),
    )
    hostname: str | None = Field(
        default=None, json_schema_extra=_never_null("string", _HOSTNAME_RULES)
    )
    backups_enabled: bool | None = Field(default=None, json_schema_extra=_never_null("boolean"))

    @field_validator("name", "hostname", "backups_enabled", mode="before")
    @classmethod
    def _reject_null(cls, value: Any) -> Any:
        # Leaving a field out means "keep it"; an explicit null is a mistake, not a request.
        if value is None:
            raise PydanticCustomError("null_type", "Must not be null.")
        return value


class CreateSshKeyIn(StrictInput):
    name: str = Field(examples=["laptop"], json_schema_extra=_KEY_NAME_RULES)
    # A complete key: clients (and fuzzers) that send the example get it accepted.
    public_key: str = Field(
        examples=[
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl "
            "me@laptop"
        ]
    )


class AuditTarget(BaseModel):
    type: str = Field(description="`server` or `ssh_key`")
    id: int | None = Field(description="Null for a create that was refused")


class AuditEventOut(BaseModel):
    """One mutation asked through the API, and how it ended."""

    id: int
    action: str = Field(description="What was asked, e.g. `server.create`, `server.reboot`")
    target: AuditTarget
    token_id: int = Field(description="The API token that asked (see `vps tokens list`)")
    method: str
    path: str
    status_code: int = Field(description="The HTTP status of the answer")
    result: Literal["succeeded", "refused"]
    error_code: str | None = Field(description="The error's `code` when refused")
    request_id: str = Field(description="The `X-Request-ID` of the request")
    created_at: Timestamp
