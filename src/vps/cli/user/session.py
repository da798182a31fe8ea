"""The options every user command shares, and the client they build.

`api_session()` weighs the flags, the environment and the profile (see `config.resolve`),
opens an SDK client, and turns any failure inside the block into one line on stderr and
exit code 1: a command body only handles the happy path.

`@api_command` gives a command the shared options (`--output`, `--profile`, `--api-url`,
`--token`) once for all: the body takes them as one `Invocation`, its first parameter.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Concatenate, ParamSpec, TypeVar

import typer

from vps.cli.user import config
from vps.cli.user.errors import LOGIN_HINT, describe
from vps.cli.user.output import OutputFormat, OutputOption, message
from vps.client import Client, InsufficientCredits, Page, VpsError

P = ParamSpec("P")
ItemT = TypeVar("ItemT")

EXIT_FAILED = 1
EXIT_TIMED_OUT = 2
CLI_RETRIES = 2

ProfileOption = Annotated[
    str | None,
    typer.Option("--profile", help="Profile to use (VPS_PROFILE; default: the active one)"),
]
ApiUrlOption = Annotated[
    str | None, typer.Option("--api-url", help="API base URL (VPS_API_URL)", show_default=False)
]
TokenOption = Annotated[
    str | None, typer.Option("--token", help="API token (VPS_TOKEN)", show_default=False)
]


def fail(text: str, code: int = EXIT_FAILED) -> typer.Exit:
    message(f"error: {text}")
    return typer.Exit(code)


def connection(profile: str | None, api_url: str | None, token: str | None) -> config.Connection:
    try:
        settings = config.load(config.config_path())
        return config.resolve(settings, profile=profile, api_url=api_url, token=token)
    except config.ConfigError as error:
        raise fail(str(error)) from None


@contextmanager
def api_session(
    profile: str | None,
    api_url: str | None,
    token: str | None,
    *,
    subject: str | None = None,
) -> Iterator[Client]:
    """A client for the resolved connection; SDK errors raised in the block end the command
    with their explanation. `subject` ("server 42") names the target in a 404 message."""
    resolved = connection(profile, api_url, token)
    if not resolved.token:
        raise fail(f"no API token for profile {resolved.profile!r}: {LOGIN_HINT}")
    # Few retries: a person waits on the answer, and a refused connection should say so
    # within a second or two rather than after the SDK's full backoff.
    client = Client(resolved.api_url, resolved.token, max_retries=CLI_RETRIES)
    try:
        yield client
    except VpsError as error:
        account = _account_name(client) if isinstance(error, InsufficientCredits) else None
        text = describe(error, subject=subject, api_url=resolved.api_url, account=account)
        raise fail(text) from None
    finally:
        client.close()


def _account_name(client: Client) -> str | None:
    """The account's name, to spell out the top-up command; None if it cannot be read."""
    try:
        return client.account.get().name
    except VpsError:
        return None


@dataclass(frozen=True)
class Invocation:
    """The shared options of one command run: how to print, and where to connect as whom."""

    output: OutputFormat
    profile: str | None
    api_url: str | None
    token: str | None

    def client(self, *, subject: str | None = None) -> AbstractContextManager[Client]:
        """`api_session()` for these options; `subject` names the target in a 404 message."""
        return api_session(self.profile, self.api_url, self.token, subject=subject)


def _shared_option(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


# In this order after the command's own parameters, as `--help` lists them.
_SHARED_OPTIONS = (
    _shared_option("output", OutputOption, OutputFormat.table),
    _shared_option("profile", ProfileOption, None),
    _shared_option("api_url", ApiUrlOption, None),
    _shared_option("token", TokenOption, None),
)


def api_command(body: Callable[Concatenate[Invocation, P], None]) -> Callable[..., None]:
    """The command Typer registers: `body`'s own parameters (all but the first) followed by
    the shared options, which reach `body` gathered in an `Invocation`.

    Typer reads a command's options from its signature, so the wrapper carries one made of
    both; its docstring (the command's help) is `body`'s.
    """
    own = list(inspect.signature(body, eval_str=True).parameters.values())[1:]

    @functools.wraps(body)
    def command(*args: P.args, **kwargs: P.kwargs) -> None:
        shared: dict[str, Any] = {
            option.name: kwargs.pop(option.name) for option in _SHARED_OPTIONS
        }
        body(Invocation(**shared), *args, **kwargs)

    parameters = [*own, *_SHARED_OPTIONS]
    command.__signature__ = inspect.Signature(parameters, return_annotation=None)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": None}
    return command


def every_result(fetch_page: Callable[[int], Page[ItemT]]) -> list[ItemT]:
    """The results of every page: `fetch_page(n)` reads page n (1, 2, ...) until the last."""
    results: list[ItemT] = []
    page_number = 1
    while True:
        page = fetch_page(page_number)
        results += page.results
        if page.next is None or not page.results:
            return results
        page_number += 1
