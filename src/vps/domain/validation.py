"""Rules for names a user chooses."""

from __future__ import annotations

import re

_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_ACCOUNT = re.compile(r"[a-z0-9](?:[a-z0-9_-]{0,62})")

# The same rules as JSON Schema patterns (ECMA-262, anchored), so that the OpenAPI document
# says which names the API accepts and a generated client or a fuzzer can tell valid from
# invalid. `tests/fuzz/test_patterns.py` checks that they agree with the functions below.
_LABEL_PATTERN = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
NAME_PATTERN = f"^{_LABEL_PATTERN}$"
NAME_MAX_LENGTH = 63
# At least two labels, and a top-level domain that is not all digits.
HOSTNAME_PATTERN = f"^(?:{_LABEL_PATTERN}\\.)+(?![0-9]+$){_LABEL_PATTERN}$"
HOSTNAME_MAX_LENGTH = 253


def name_problem(name: str) -> str | None:
    """Why `name` is not a valid server name, or None when it is."""
    if not 1 <= len(name) <= NAME_MAX_LENGTH:
        return "must be 1 to 63 characters long"
    if not _NAME.fullmatch(name):
        return (
            "may contain only ASCII letters, digits and hyphens, "
            "and may not start or end with a hyphen"
        )
    return None


def hostname_problem(hostname: str) -> str | None:
    """Why `hostname` is not an RFC 1123 fully qualified domain name, or None when it is."""
    if not hostname:
        return "must not be empty"
    if len(hostname) > HOSTNAME_MAX_LENGTH:
        return "must be at most 253 characters long"
    labels = hostname.split(".")
    if len(labels) < 2:
        return "must be a fully qualified domain name such as web01.example.com"
    for label in labels:
        if not label:
            return "must not contain empty labels (two dots in a row, or a dot at either end)"
        if len(label) > 63:
            return "each label must be at most 63 characters long"
        if not _LABEL.fullmatch(label):
            return (
                "each label may contain only ASCII letters, digits and hyphens, "
                "and may not start or end with a hyphen"
            )
    if labels[-1].isdigit():
        return "the top-level domain must not be numeric"
    return None


def account_name_problem(name: str) -> str | None:
    if not _ACCOUNT.fullmatch(name):
        return (
            "must be 1 to 63 characters: lower-case letters, digits, '-' and '_', "
            "starting with a letter or digit"
        )
    return None
