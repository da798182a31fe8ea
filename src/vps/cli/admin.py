"""Operator commands: accounts, credits, tokens and the catalog.

They work on the database directly. The services, the models and the database layer are
imported inside each command rather than here: `vps` imports this module on every run, and
a user command (plain HTTP) should not pay for SQLAlchemy to start.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from vps.cli.common import fail, run_in_transaction, settings
from vps.domain.money import format_cents, parse_amount

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from vps.db.models import ApiToken

accounts_app = typer.Typer(help="Accounts that own servers and credits.", no_args_is_help=True)
credits_app = typer.Typer(help="Prepaid credits.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens.", no_args_is_help=True)
catalog_app = typer.Typer(help="Plans, operating systems and locations.", no_args_is_help=True)


def _cents(amount: str) -> int:
    try:
        return parse_amount(amount)
    except ValueError as error:
        raise fail(f"invalid amount {amount!r}: {error}") from None


@accounts_app.command("create")
def accounts_create(
    name: str,
    credits: Annotated[
        str, typer.Option("--credits", help="Initial credits, e.g. 100 or 12.50")
    ] = "0",
) -> None:
    """Create an account with an initial credit balance."""
    from vps.db.types import utcnow
    from vps.services import accounts

    cents = 0 if credits.strip() in {"0", "0.00"} else _cents(credits)

    async def action(session: AsyncSession) -> str:
        account = await accounts.create_account(session, name, cents, utcnow())
        balance = format_cents(account.balance_cents)
        return f"created account {account.name} (id {account.id}) with {balance} credits"

    typer.echo(run_in_transaction(action))


@accounts_app.command("show")
def accounts_show(name: str) -> None:
    """Show an account's balance and latest ledger entries."""
    from vps.services import accounts

    async def action(session: AsyncSession) -> list[str]:
        account = await accounts.account_by_name(session, name)
        summary = await accounts.account_summary(session, account.id)
        lines = [f"{account.name} (id {account.id}): balance {format_cents(account.balance_cents)}"]
        lines += [
            f"  {e.created_at:%Y-%m-%d %H:%M:%S} {e.kind:<7} {format_cents(e.amount_cents):>10} "
            f"-> {format_cents(e.balance_after_cents):>10}  {e.description}"
            for e in summary.ledger
        ]
        return lines

    typer.echo("\n".join(run_in_transaction(action)))


@credits_app.command("add")
def credits_add(name: str, amount: str) -> None:
    """Add credits to an account (recorded in its ledger)."""
    from vps.db.types import utcnow
    from vps.runtime import billing_terms
    from vps.services import accounts

    cents = _cents(amount)
    terms = billing_terms(settings())

    async def action(session: AsyncSession) -> accounts.CreditsAdded:
        return await accounts.add_credits(session, name, cents, utcnow(), terms)

    added = run_in_transaction(action)
    balance = format_cents(added.balance_cents)
    typer.echo(f"added {format_cents(cents)} credits to {name}; balance {balance}")
    if added.resumed_server_ids:
        resumed = ", ".join(str(server_id) for server_id in added.resumed_server_ids)
        typer.echo(f"renewed and resumed suspended servers: {resumed}")


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Argument(help="The account the token belongs to")],
    read_only: Annotated[bool, typer.Option("--read-only", help="Only GET requests")] = False,
    expires_in_days: Annotated[
        int | None, typer.Option("--expires-in-days", min=1, help="Expire after N days")
    ] = None,
    label: Annotated[str, typer.Option(help="A note to tell tokens apart")] = "",
) -> None:
    """Create an API token. It is shown once, as the last line of the output."""
    from vps.db.types import utcnow
    from vps.services import accounts

    async def action(session: AsyncSession) -> tuple[str, int]:
        plain, record = await accounts.create_token(
            session,
            name,
            utcnow(),
            read_only=read_only,
            expires_in=timedelta(days=expires_in_days) if expires_in_days else None,
            label=label,
        )
        return plain, record.id

    plain, token_id = run_in_transaction(action)
    kind = "read-only" if read_only else "read-write"
    typer.echo(f"created {kind} token {token_id} for {name}; it is shown only once:", err=True)
    typer.echo(plain)


@tokens_app.command("list")
def tokens_list(name: str) -> None:
    """List an account's tokens (never their secret part)."""
    from vps.services import accounts

    def state(token: ApiToken) -> str:
        if token.revoked_at:
            return "revoked"
        return f"expires {token.expires_at:%Y-%m-%d}" if token.expires_at else "active"

    async def action(session: AsyncSession) -> list[str]:
        return [
            f"{t.id:>5}  {t.display_prefix}…  {'read-only ' if t.read_only else 'read-write'}  "
            f"{state(t)}  {t.label}"
            for t in await accounts.list_tokens(session, name)
        ]

    typer.echo("\n".join(run_in_transaction(action)) or "no tokens")


@tokens_app.command("revoke")
def tokens_revoke(token_id: int) -> None:
    """Revoke a token by id; requests with it get 401 from now on."""
    from vps.db.types import utcnow
    from vps.services import auth

    async def action(session: AsyncSession) -> None:
        await auth.revoke_token(session, token_id, utcnow())

    run_in_transaction(action)
    typer.echo(f"revoked token {token_id}")


@catalog_app.command("list")
def catalog_list() -> None:
    """Show every plan, operating system and location, retired ones included."""
    from vps.services import catalog

    async def action(session: AsyncSession) -> list[str]:
        plans, systems, locations = await catalog.everything(session)
        lines = ["plans:"]
        lines += [
            f"  {p.id:>4}  {p.name:<20} {p.vcpus} vCPU {p.memory_mb} MB {p.storage_gb} GB "
            f"{p.bandwidth_gb} GB/mo  {format_cents(p.monthly_price_cents)}/mo"
            f"{'' if p.available else '  (retired)'}"
            for p in plans
        ]
        lines.append("operating systems:")
        lines += [
            f"  {o.id:>4}  {o.name:<20} {o.slug}{'' if o.available else '  (retired)'}"
            for o in systems
        ]
        lines.append("locations:")
        lines += [
            f"  {loc.code:<12} {loc.name}{'' if loc.available else '  (retired)'}"
            for loc in locations
        ]
        return lines

    typer.echo("\n".join(run_in_transaction(action)))


@catalog_app.command("add-plan")
def catalog_add_plan(
    name: str,
    vcpus: Annotated[int, typer.Option(min=1)],
    memory_mb: Annotated[int, typer.Option(min=128)],
    storage_gb: Annotated[int, typer.Option(min=1)],
    bandwidth_gb: Annotated[int, typer.Option(min=0)],
    monthly_price: Annotated[str, typer.Option(help="Credits per month")],
    backups_price: Annotated[
        str, typer.Option(help="Extra credits per month with backups")
    ] = "0.01",
) -> None:
    """Add a plan."""
    from vps.db.models import Plan
    from vps.services import accounts

    plan = Plan(
        name=name,
        vcpus=vcpus,
        memory_mb=memory_mb,
        storage_gb=storage_gb,
        bandwidth_gb=bandwidth_gb,
        monthly_price_cents=_cents(monthly_price),
        backups_monthly_price_cents=_cents(backups_price),
        available=True,
    )

    async def action(session: AsyncSession) -> int:
        return (await accounts.add_plan(session, plan)).id

    typer.echo(f"added plan {run_in_transaction(action)}")


@catalog_app.command("add-os")
def catalog_add_os(
    name: str, slug: Annotated[str, typer.Option(help="Image name the driver uses")]
) -> None:
    """Add an operating system."""
    from vps.db.models import OperatingSystem
    from vps.services import accounts

    async def action(session: AsyncSession) -> int:
        return (
            await accounts.add_os(session, OperatingSystem(name=name, slug=slug, available=True))
        ).id

    typer.echo(f"added operating system {run_in_transaction(action)}")


@catalog_app.command("add-location")
def catalog_add_location(
    code: str,
    name: Annotated[str, typer.Option()],
    ipv4: Annotated[str, typer.Option(help="IPv4 pool, e.g. 192.0.2.0/24")],
    ipv6: Annotated[str, typer.Option(help="IPv6 pool, e.g. 2001:db8:3::/64")],
) -> None:
    """Add a location with its IPv4 and IPv6 address pools."""
    from vps.services import accounts

    async def action(session: AsyncSession) -> None:
        await accounts.add_location(session, code, name, ipv4, ipv6)

    run_in_transaction(action)
    typer.echo(f"added location {code}")


def _availability(kind: str, key: str, available: bool) -> None:
    from vps.db.models import OperatingSystem, Plan
    from vps.services import accounts

    async def action(session: AsyncSession) -> None:
        if kind == "plan":
            await accounts.set_available(session, Plan, _int(key), available)
        elif kind == "os":
            await accounts.set_available(session, OperatingSystem, _int(key), available)
        else:
            await accounts.set_location_available(session, key, available)

    run_in_transaction(action)
    typer.echo(f"{'restored' if available else 'retired'} {kind} {key}")


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise fail(f"expected a numeric id, got {text!r}") from None


@catalog_app.command("retire")
def catalog_retire(
    kind: Annotated[str, typer.Argument(help="plan, os or location")], key: str
) -> None:
    """Stop offering a plan, OS (by id) or location (by code); existing servers keep it."""
    if kind not in {"plan", "os", "location"}:
        raise fail("kind must be plan, os or location")
    _availability(kind, key, False)


@catalog_app.command("restore")
def catalog_restore(
    kind: Annotated[str, typer.Argument(help="plan, os or location")], key: str
) -> None:
    """Offer a retired plan, OS or location again."""
    if kind not in {"plan", "os", "location"}:
        raise fail("kind must be plan, os or location")
    _availability(kind, key, True)
