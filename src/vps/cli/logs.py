"""Logging for `vps serve` and `vps worker`: one format, and no API token in any line.

A token can reach a log line without anyone logging it on purpose: uvicorn's access log
prints the query string (`GET /api/v1/servers/?token=vps_...`), and an exception message
may quote a header. So every handler gets a filter that redacts anything shaped like a
token, in the message, in its arguments and in a formatted traceback.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

from uvicorn.config import LOGGING_CONFIG

from vps.domain.tokens import PREFIX

# Shorter than a whole token on purpose: a token cut short or with a character changed is
# still most of a secret. The 6 characters shown in token listings stay below this.
TOKEN_PATTERN = re.compile(re.escape(PREFIX) + r"[0-9A-Za-z]{16,}")
REDACTED = PREFIX + "[redacted]"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def redact(text: str) -> str:
    return TOKEN_PATTERN.sub(REDACTED, text) if PREFIX in text else text


def _redact_argument(value: object) -> object:
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, int | float):
        return value
    # Anything else is formatted with str() later; redact that text if it holds a token,
    # and otherwise keep the object, so `%d`/`%r` placeholders still get what they expect.
    text = str(value)
    return redact(text) if TOKEN_PATTERN.search(text) else value


class RedactTokens(logging.Filter):
    """Rewrites the record so that no formatter can print a token from it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        # Redacted one by one rather than formatted here: uvicorn's access formatter reads
        # the arguments as a tuple.
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_argument(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _redact_argument(arg) for key, arg in record.args.items()}
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def logging_config(level: str) -> dict[str, Any]:
    """uvicorn's logging, plus our root logger, with the token filter on every handler.

    Given to uvicorn as its `log_config`, it also applies in the processes of
    `vps serve --workers N`, which configure their logging afresh.
    """
    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact_tokens": {"()": f"{__name__}.RedactTokens"}}
    config["formatters"]["vps"] = {"format": _FORMAT}
    config["handlers"]["vps"] = {
        "class": "logging.StreamHandler",
        "formatter": "vps",
        "stream": "ext://sys.stderr",
    }
    for handler in config["handlers"].values():
        handler["filters"] = ["redact_tokens"]
    config["root"] = {"handlers": ["vps"], "level": level.upper()}
    return config
