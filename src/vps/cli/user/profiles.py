"""`vps login`, `vps logout`, `vps profiles`: where the other commands connect, as whom."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from vps.cli.user import config
from vps.cli.user.errors import describe, with_request_id
from vps.cli.user.output import Column, OutputFormat, OutputOption, message, show_list
from vps.cli.user.session import CLI_RETRIES, ApiUrlOption, fail
from vps.client import Client, Unauthenticated, VpsError

LoginProfileOption = Annotated[
    str | None,
    typer.Option("--profile", help="Profile name (default: VPS_PROFILE, the active one, default)"),
]

PROFILE_COLUMNS: list[Column] = [
    ("", lambda p: "*" if p["active"] else ""),
    ("NAME", lambda p: p["name"]),
    ("API URL", lambda p: p["api_url"]),
    ("TOKEN", lambda p: p["token"]),
]


def _masked(token: str | None) -> str:
    """Enough of a token to tell it apart, never enough to use it."""
    if not token:
        return "-"
    return token[:8] + "…" if len(token) > 12 else "…"


def _load() -> config.ConfigFile:
    try:
        return config.load(config.config_path())
    except config.ConfigError as error:
        raise fail(str(error)) from None


def login(
    profile: LoginProfileOption = None,
    api_url: ApiUrlOption = None,
    token: Annotated[
        str | None,
        typer.Option("--token", help="API token (asked for, hidden, when not given)"),
    ] = None,
) -> None:
    """Check an API token against the API and save it in a profile (made the active one)."""
    settings = _load()
    name = config.profile_name(profile, settings, os.environ)
    existing = settings.profiles.get(name)
    # Not `config.resolve`: login may name a profile that does not exist yet.
    url = (
        api_url
        or os.environ.get("VPS_API_URL")
        or (existing.api_url if existing else None)
        or config.DEFAULT_API_URL
    ).rstrip("/")
    secret = token or typer.prompt("API token", hide_input=True, err=True)
    secret = secret.strip()
    if not secret:
        raise fail("an API token is needed")
    try:
        with Client(url, secret, max_retries=CLI_RETRIES) as client:
            account = client.account.get()
    except Unauthenticated as error:
        text = f"not logged in: the API at {url} refused this token ({error.message})"
        raise fail(with_request_id(text, error)) from None
    except VpsError as error:
        raise fail(f"not logged in: {describe(error, api_url=url)}") from None
    settings.profiles[name] = config.Profile(name, url, secret)
    settings.active = name
    try:
        config.save(settings)
    except OSError as error:
        raise fail(f"cannot write {settings.path}: {error.strerror}") from None
    message(
        f"logged in to account {account.name} (id {account.id}) at {url}; "
        f"saved as profile {name!r} in {settings.path}"
    )


def logout(profile: LoginProfileOption = None) -> None:
    """Forget a profile and its token."""
    settings = _load()
    name = config.profile_name(profile, settings, os.environ)
    if name not in settings.profiles:
        raise fail(f"no profile named {name!r} in {settings.path}")
    del settings.profiles[name]
    if settings.active == name:
        settings.active = None
    config.save(settings)
    message(f"logged out: removed profile {name!r} and its token from {settings.path}")


def profiles(output: OutputOption = OutputFormat.table) -> None:
    """The saved profiles; `*` marks the one commands use by default."""
    settings = _load()
    active = config.profile_name(None, settings, os.environ)
    rows = [
        {
            "name": saved.name,
            "api_url": saved.api_url,
            "active": saved.name == active,
            "token": _masked(saved.token),
        }
        for saved in settings.profiles.values()
    ]
    if output is OutputFormat.json:
        for row in rows:
            row["has_token"] = row.pop("token") != "-"
    show_list(rows, output, PROFILE_COLUMNS, empty="no profiles yet: run `vps login`")
