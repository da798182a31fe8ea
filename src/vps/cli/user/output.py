"""What the user commands print: Rich tables for people, the API's JSON for scripts.

Only results go to stdout; messages and progress go to stderr, so `-o json | jq` works.
Rich already honours `NO_COLOR` and drops colours when the stream is not a terminal.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table
from rich.text import Text


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


OutputOption = Annotated[
    OutputFormat,
    typer.Option("--output", "-o", help="table for people, json (the API's own) for scripts"),
]

STATUS_STYLES: dict[str, str] = {
    "active": "green",
    "succeeded": "green",
    "provisioning": "cyan",
    "starting": "cyan",
    "rebooting": "cyan",
    "running": "cyan",
    "stopping": "yellow",
    "stopped": "yellow",
    "suspended": "magenta",
    "error": "bold red",
    "failed": "bold red",
    "deleted": "dim",
}

# Wide enough that a table piped to a file or a test keeps one row per line.
_PIPE_WIDTH = 200


def _console(*, stderr: bool) -> Console:
    probe = Console(stderr=stderr)
    width = None if probe.is_terminal or os.environ.get("COLUMNS") else _PIPE_WIDTH
    # No automatic highlighting of numbers and URLs: colour means status, nothing else.
    return Console(stderr=stderr, width=width, highlight=False)


def stdout_console() -> Console:
    return _console(stderr=False)


def stderr_console() -> Console:
    return _console(stderr=True)


def message(text: str) -> None:
    """A note for the person at the terminal (stderr, never mixed with results)."""
    stderr_console().print(text, markup=False, highlight=False, soft_wrap=True)


# Set by the SDK from response headers, not part of any body the API sends.
_CLIENT_ONLY_FIELDS = {"etag"}


def as_json(item: BaseModel | dict[str, Any]) -> dict[str, Any]:
    """The API's JSON for an SDK model: the fields the API sent (`exclude_unset`), not the
    defaults the SDK fills in for fields that only some answers carry."""
    if not isinstance(item, BaseModel):
        return item
    return item.model_dump(mode="json", exclude_unset=True, exclude=_CLIENT_ONLY_FIELDS)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def status_text(status: str | None) -> Text:
    if status is None:
        return Text("-")
    return Text(status, style=STATUS_STYLES.get(status, ""))


def cell(value: Any) -> str | Text:
    if isinstance(value, Text):
        return value
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


Column = tuple[str, Callable[[dict[str, Any]], Any]]


def print_table(
    rows: Iterable[dict[str, Any]],
    columns: Sequence[Column],
    *,
    title: str | None = None,
    empty: str = "nothing to show",
) -> None:
    materialised = list(rows)
    if not materialised:
        message(empty)
        return
    table = Table(title=title, title_justify="left", header_style="bold")
    for header, _ in columns:
        table.add_column(header, overflow="fold")
    for row in materialised:
        table.add_row(*(cell(extract(row)) for _, extract in columns))
    stdout_console().print(table)


def print_fields(
    row: dict[str, Any], fields: Sequence[Column], *, title: str | None = None
) -> None:
    """One object as a two-column table of labels and values."""
    table = Table(title=title, title_justify="left", show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for label, extract in fields:
        table.add_row(label, cell(extract(row)))
    stdout_console().print(table)


def show(
    data: BaseModel | dict[str, Any],
    output: OutputFormat,
    fields: Sequence[Column],
    *,
    title: str | None = None,
) -> None:
    row = as_json(data)
    if output is OutputFormat.json:
        print_json(row)
    else:
        print_fields(row, fields, title=title)


def show_list(
    items: Iterable[BaseModel | dict[str, Any]],
    output: OutputFormat,
    columns: Sequence[Column],
    *,
    title: str | None = None,
    empty: str = "nothing to show",
) -> None:
    rows = [as_json(item) for item in items]
    if output is OutputFormat.json:
        print_json(rows)
    else:
        print_table(rows, columns, title=title, empty=empty)
