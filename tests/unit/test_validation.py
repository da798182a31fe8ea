"""Rules for server names, hostnames and account names, with their edge lengths."""

from __future__ import annotations

import pytest

from vps.domain.validation import account_name_problem, hostname_problem, name_problem


@pytest.mark.parametrize(
    "name",
    [
        "a",
        "Z",
        "7",
        "web-server-01",
        "Web-Server-01",
        "a-b",
        "a--b",
        "0-9",
        "a" * 63,
        "a" + "-" * 61 + "b",
    ],
)
def test_valid_server_names(name: str) -> None:
    assert name_problem(name) is None


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "1 to 63"),
        ("a" * 64, "1 to 63"),
        ("a" * 200, "1 to 63"),
        ("-web", "hyphen"),
        ("web-", "hyphen"),
        ("-", "hyphen"),
        ("web_server", "letters"),
        ("web.server", "letters"),
        ("web server", "letters"),
        ("web\n", "letters"),
        ("sérveur", "letters"),
        ("web٣", "letters"),  # an Arabic-Indic digit is not an ASCII digit
        ("web/1", "letters"),
    ],
)
def test_invalid_server_names(name: str, fragment: str) -> None:
    problem = name_problem(name)
    assert problem is not None
    assert fragment in problem


def _hostname_of_length(length: int) -> str:
    """A valid-looking hostname of exactly `length` characters, in labels of at most 63."""
    labels: list[str] = []
    remaining = length
    while remaining > 0:
        # Leave room for the dot that joins the next label, and keep the last label >= 2.
        size = min(63, remaining)
        if remaining - size == 1:
            size -= 2
        labels.append("a" * size)
        remaining -= size + 1
    hostname = ".".join(labels)
    assert len(hostname) == length
    return hostname


@pytest.mark.parametrize(
    "hostname",
    [
        "web01.example.com",
        "a.b",
        "A.example.COM",
        "x-1.y-2.example.org",
        "1.example.com",
        "123.example.com",
        "example.c0m",
        "a" * 63 + ".com",
        _hostname_of_length(253),
    ],
)
def test_valid_hostnames(hostname: str) -> None:
    assert hostname_problem(hostname) is None


@pytest.mark.parametrize(
    ("hostname", "fragment"),
    [
        ("", "empty"),
        (_hostname_of_length(254), "253"),
        ("localhost", "fully qualified"),
        ("a" * 64 + ".com", "63"),
        ("web..example.com", "empty labels"),
        (".example.com", "empty labels"),
        ("example.com.", "empty labels"),
        ("-web.example.com", "hyphen"),
        ("web-.example.com", "hyphen"),
        ("web_01.example.com", "letters"),
        ("wéb.example.com", "letters"),
        ("web 01.example.com", "letters"),
        ("192.168.0.1", "numeric"),
        ("example.123", "numeric"),
    ],
)
def test_invalid_hostnames(hostname: str, fragment: str) -> None:
    problem = hostname_problem(hostname)
    assert problem is not None
    assert fragment in problem


def test_hostname_length_edges() -> None:
    assert hostname_problem(_hostname_of_length(253)) is None
    assert hostname_problem(_hostname_of_length(254)) is not None
    assert hostname_problem("a" * 63 + ".example.com") is None
    assert hostname_problem("a" * 64 + ".example.com") is not None


@pytest.mark.parametrize("name", ["a", "0", "acme", "acme_corp", "a-b_c", "a_", "a" * 63])
def test_valid_account_names(name: str) -> None:
    assert account_name_problem(name) is None


@pytest.mark.parametrize("name", ["", "A", "Acme", "_acme", "-acme", "a.b", "a b", "a" * 64])
def test_invalid_account_names(name: str) -> None:
    assert account_name_problem(name) is not None
