"""`vps ssh-keys ...`: the public keys servers can be created with."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vps.cli.user.output import Column, message, show, show_list
from vps.cli.user.session import Invocation, api_command, every_result, fail
from vps.client import Client, SshKey

ssh_keys_app = typer.Typer(help="SSH public keys to install on new servers.", no_args_is_help=True)

KeyId = Annotated[int, typer.Argument(help="The key's id", min=1, show_default=False)]

KEY_COLUMNS: list[Column] = [
    ("ID", lambda k: k["id"]),
    ("NAME", lambda k: k["name"]),
    ("FINGERPRINT", lambda k: k["fingerprint"]),
    ("CREATED", lambda k: k.get("created_at")),
]
KEY_FIELDS: list[Column] = [
    ("id", lambda k: k["id"]),
    ("name", lambda k: k["name"]),
    ("fingerprint", lambda k: k["fingerprint"]),
    ("public key", lambda k: k["public_key"]),
    ("created", lambda k: k.get("created_at")),
]


def every_key(client: Client) -> list[SshKey]:
    """All the account's keys, page after page."""
    return every_result(lambda page: client.ssh_keys.list(page=page, page_size=100))


@ssh_keys_app.command("list")
@api_command
def list_keys(call: Invocation) -> None:
    """Your SSH keys."""
    with call.client() as client:
        show_list(every_key(client), call.output, KEY_COLUMNS, empty="no SSH keys")


@ssh_keys_app.command("get")
@api_command
def get_key(call: Invocation, key_id: KeyId) -> None:
    """One SSH key, with its public part."""
    with call.client(subject=f"SSH key {key_id}") as client:
        show(client.ssh_keys.get(key_id), call.output, KEY_FIELDS)


@ssh_keys_app.command("add")
@api_command
def add_key(
    call: Invocation,
    name: Annotated[str, typer.Option(help="A name to tell keys apart", show_default=False)],
    public_key: Annotated[
        str | None, typer.Option("--public-key", help="The key itself (ssh-ed25519 AAAA...)")
    ] = None,
    public_key_file: Annotated[
        Path | None,
        typer.Option("--public-key-file", help="A file holding the key (~/.ssh/id_ed25519.pub)"),
    ] = None,
) -> None:
    """Add an SSH public key, given inline or read from a file."""
    if (public_key is None) == (public_key_file is None):
        raise fail("give exactly one of --public-key or --public-key-file")
    if public_key_file is not None:
        try:
            public_key = public_key_file.expanduser().read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            raise fail(f"cannot read {public_key_file}: {error}") from None
    assert public_key is not None
    with call.client() as client:
        created = client.ssh_keys.create(name=name, public_key=public_key)
        message(f"added SSH key {created.id} ({created.name}), fingerprint {created.fingerprint}")
        show(created, call.output, KEY_FIELDS)


@ssh_keys_app.command("delete")
@api_command
def delete_key(call: Invocation, key_id: KeyId) -> None:
    """Delete an SSH key (servers that have it keep it). The API answers no body, so even
    with -o json nothing is printed on stdout."""
    with call.client(subject=f"SSH key {key_id}") as client:
        client.ssh_keys.delete(key_id)
    message(f"deleted SSH key {key_id}")
