"""The patterns the OpenAPI document publishes say exactly what the API accepts: a value
matches the pattern if and only if the rule behind it accepts the value. A pattern looser
than the rule makes valid-looking requests fail; a stricter one hides accepted values."""

from __future__ import annotations

import re
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from vps.api.openapi import IF_MATCH_PATTERN
from vps.api.schemas import BLANK_CHARACTERS, CreateSshKeyIn
from vps.domain import etags
from vps.domain.errors import InvalidParameters
from vps.domain.validation import (
    HOSTNAME_MAX_LENGTH,
    HOSTNAME_PATTERN,
    NAME_MAX_LENGTH,
    NAME_PATTERN,
    hostname_problem,
    name_problem,
)

LABEL = st.from_regex(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,4}[A-Za-z0-9])?", fullmatch=True)
NEAR_HOSTNAMES = st.one_of(
    st.lists(st.one_of(LABEL, st.sampled_from(["", "-a", "a-", "123", "a" * 64])), max_size=4).map(
        ".".join
    ),
    st.text(alphabet="ab1-.\n", max_size=12),
    st.text(max_size=8),
)
EXAMPLES = settings(max_examples=300, deadline=None, database=None)


def matches(pattern: str, value: str, max_length: int) -> bool:
    # JSON Schema's `$` is the end of the string; Python's also matches before a final "\n".
    return (
        len(value) <= max_length
        and re.search(pattern, value) is not None
        and (not value.endswith("\n"))
    )


@EXAMPLES
@given(st.one_of(LABEL, st.text(alphabet="aZ09-_. \n", max_size=70), st.text(max_size=5)))
def test_the_name_pattern_is_the_name_rule(name: str) -> None:
    assert matches(NAME_PATTERN, name, NAME_MAX_LENGTH) == (name_problem(name) is None)


@EXAMPLES
@given(NEAR_HOSTNAMES)
def test_the_hostname_pattern_is_the_hostname_rule(hostname: str) -> None:
    accepted = hostname_problem(hostname) is None
    assert matches(HOSTNAME_PATTERN, hostname, HOSTNAME_MAX_LENGTH) == accepted


def test_blank_characters_are_what_strip_removes() -> None:
    blank = re.compile(f"[{BLANK_CHARACTERS}]")
    for code in range(sys.maxunicode + 1):
        character = chr(code)
        assert bool(blank.fullmatch(character)) == character.isspace(), hex(code)


def test_the_key_name_pattern_refuses_blank_names() -> None:
    pattern = CreateSshKeyIn.model_json_schema()["properties"]["name"]["pattern"]
    for name in (" ", "\x85", "\u3000\t", "a\x00"):
        assert re.search(pattern, name) is None, repr(name)
    for name in ("laptop", " my key ", "\ufeff"):
        assert re.search(pattern, name) is not None, repr(name)


@EXAMPLES
@given(
    st.one_of(
        st.lists(
            st.tuples(st.sampled_from(["", "W/"]), st.text(alphabet='a7,"*/ ', max_size=4)).map(
                lambda tag: f'{tag[0]}"{tag[1]}"'
            ),
            min_size=1,
            max_size=3,
        ).map(", ".join),
        st.text(alphabet='a7,"*/W \t\x0b\x1c\x85\xa0\x80', max_size=10),
    )
)
def test_the_if_match_pattern_is_what_the_parser_accepts(value: str) -> None:
    try:
        etags.parse_if_match(value)
        parsed = True
    except InvalidParameters:
        parsed = False
    assert (re.search(IF_MATCH_PATTERN, value) is not None) == parsed, value
