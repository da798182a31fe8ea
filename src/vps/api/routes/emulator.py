"""The emulator's controls at `/_emulator/`: simulator timings, injected failures, funded
accounts and balances. Mounted only when `VPS_EMULATOR_CONTROLS` is on; unauthenticated,
like the rest of a local emulator's set-up, so never for production."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, Field

from vps.api.deps import AppState, app_state
from vps.api.schemas import StrictInput
from vps.domain.errors import InvalidParameters, NotFound
from vps.domain.money import format_cents, parse_amount
from vps.services import emulator
from vps.services.emulator import EmulatorControls

router = APIRouter(prefix="/_emulator", tags=["emulator"])

Operation = Literal["create", "start", "stop", "reboot", "delete"]
Seconds = Annotated[float, Field(ge=0, le=3600)]


class TimingsIn(StrictInput):
    provision_seconds: Seconds | None = None
    action_seconds: Seconds | None = None
    delete_seconds: Seconds | None = None


class TimingsOut(BaseModel):
    provision_seconds: float
    action_seconds: float
    delete_seconds: float


class FaultIn(StrictInput):
    operation: Operation = Field(description="The driver call that fails.")
    count: int = Field(default=1, ge=1, le=1000, description="How many calls in a row fail.")
    retriable: bool = Field(
        default=False,
        description="A retriable failure is retried by the worker with backoff (and gives up "
        "after `VPS_WORKER_MAX_ATTEMPTS`); a permanent one fails the action at once.",
    )
    message: str = Field(default="", max_length=500)


class FaultOut(BaseModel):
    operation: str
    remaining: int
    retriable: bool
    message: str


class AccountIn(StrictInput):
    name: str | None = Field(default=None, examples=["sdk-tests"])
    credits: str = Field(default="100.00", examples=["100.00"])


class AccountOut(BaseModel):
    name: str
    token: str = Field(description="A read-write API token of the account (shown only here).")
    balance: str


class BalanceIn(StrictInput):
    balance: str = Field(examples=["0.00"])


class BalanceOut(BaseModel):
    name: str
    balance: str


class FullIn(StrictInput):
    full: bool = Field(description="true: creates in the location answer `503 location_full`.")


class FullOut(BaseModel):
    location: str
    full: bool


def _controls(state: AppState) -> EmulatorControls:
    if state.emulator is None:  # the router is only mounted with controls; a bug otherwise
        raise NotFound("The emulator controls are off.")
    return state.emulator


def _cents(field: str, text: str, *, allow_zero: bool) -> int:
    try:
        return parse_amount(text, allow_zero=allow_zero)
    except ValueError as error:
        raise InvalidParameters.single(field, f"Invalid amount: {error}.") from None


@router.get("/timings/", response_model=TimingsOut)
async def get_timings(request: Request) -> TimingsOut:
    timings = _controls(app_state(request)).timings()
    return TimingsOut(**vars(timings))


@router.patch("/timings/", response_model=TimingsOut)
async def set_timings(body: TimingsIn, request: Request) -> TimingsOut:
    """How long the simulated hypervisor takes for each operation, from now on."""
    timings = _controls(app_state(request)).set_timings(**body.model_dump())
    return TimingsOut(**vars(timings))


@router.get("/faults/", response_model=list[FaultOut])
async def list_faults(request: Request) -> list[FaultOut]:
    return [
        FaultOut(operation=f.operation, remaining=f.count, retriable=f.retriable, message=f.message)
        for f in _controls(app_state(request)).faults()
    ]


@router.post("/faults/", response_model=FaultOut, status_code=201)
async def inject_fault(body: FaultIn, request: Request) -> FaultOut:
    """Make the next `count` calls of `operation` fail."""
    fault = _controls(app_state(request)).fail_next(
        body.operation, count=body.count, retriable=body.retriable, message=body.message
    )
    return FaultOut(
        operation=fault.operation,
        remaining=fault.count,
        retriable=fault.retriable,
        message=fault.message,
    )


@router.delete("/faults/", status_code=204)
async def clear_faults(request: Request) -> Response:
    _controls(app_state(request)).clear_faults()
    return Response(status_code=204)


@router.post("/accounts/", response_model=AccountOut, status_code=201)
async def create_account(body: AccountIn, request: Request) -> AccountOut:
    """A new account with these credits, and a read-write token for it."""
    state = app_state(request)
    _controls(state)
    cents = _cents("credits", body.credits, allow_zero=True)
    async with state.database.write() as session:
        account = await emulator.create_funded_account(session, body.name, cents, state.clock())
    return AccountOut(
        name=account.name, token=account.token, balance=format_cents(account.balance_cents)
    )


@router.put("/accounts/{name}/balance/", response_model=BalanceOut)
async def set_balance(
    name: Annotated[str, Path(max_length=63)], body: BalanceIn, request: Request
) -> BalanceOut:
    """Set the account's balance (one ledger entry records the difference)."""
    state = app_state(request)
    _controls(state)
    cents = _cents("balance", body.balance, allow_zero=True)
    async with state.database.write() as session:
        balance = await emulator.set_balance(
            session, name, cents, state.clock(), state.billing_terms
        )
    return BalanceOut(name=name, balance=format_cents(balance))


@router.put("/locations/{code}/full/", response_model=FullOut)
async def set_location_full(
    code: Annotated[str, Path(max_length=63)], body: FullIn, request: Request
) -> FullOut:
    """Make creates in the location answer `503 location_full` (no host has room), or stop."""
    state = app_state(request)
    _controls(state)
    async with state.database.write() as session:
        await emulator.set_location_full(session, code, body.full, state.clock())
    return FullOut(location=code, full=body.full)


@router.delete("/locations/full/", status_code=204)
async def clear_full_locations(request: Request) -> Response:
    """No location made full through these controls stays full."""
    state = app_state(request)
    _controls(state)
    async with state.database.write() as session:
        await emulator.clear_full_locations(session)
    return Response(status_code=204)
