"""A streaming parser for Server-Sent Events, following the WHATWG HTML rules.

Text is fed in chunks as it arrives; lines end in CRLF, LF or CR (a CR at the end of a
chunk may be the first half of a CRLF); a line starting with `:` is a comment; fields are
`event`, `data` (several lines join with LF), `id` (ignored if it contains NUL) and `retry`
(digits only); a blank line dispatches the message, unless it has no data.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["Comment", "SSEDecoder", "ServerSentEvent"]


@dataclass(frozen=True)
class ServerSentEvent:
    """One dispatched message. `id` is the stream's last event id when it was dispatched."""

    event: str
    data: str
    id: str | None
    retry: int | None


@dataclass(frozen=True)
class Comment:
    """A comment line (a heartbeat), surfaced so that readers can check their deadlines."""

    text: str


class SSEDecoder:
    def __init__(self) -> None:
        self._buffer = ""
        self._pending_cr = False
        self._first_line = True
        self._event = ""
        self._data: list[str] = []
        self._has_data = False
        self._retry: int | None = None
        #: The last event id seen, kept across messages (it is what `Last-Event-ID` sends).
        self.last_event_id: str | None = None
        #: The last `retry:` value, in milliseconds.
        self.retry: int | None = None

    def feed(self, text: str) -> Iterator[ServerSentEvent | Comment]:
        """Messages and comments completed by this chunk of text."""
        if self._pending_cr and text.startswith("\n"):
            text = text[1:]
        self._pending_cr = False
        self._buffer += text
        while True:
            end = _line_end(self._buffer)
            if end is None:
                break
            line = self._buffer[:end]
            if self._buffer[end] == "\r":
                if end + 1 < len(self._buffer):
                    skip = 2 if self._buffer[end + 1] == "\n" else 1
                else:
                    # The LF of a CRLF may be in the next chunk.
                    skip = 1
                    self._pending_cr = True
            else:
                skip = 1
            self._buffer = self._buffer[end + skip :]
            item = self._line(line)
            if item is not None:
                yield item

    def _line(self, line: str) -> ServerSentEvent | Comment | None:
        if self._first_line:
            self._first_line = False
            line = line.removeprefix("\ufeff")
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return Comment(line[1:].removeprefix(" "))
        name, colon, value = line.partition(":")
        if colon:
            value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
            self._has_data = True
        elif name == "id":
            if "\0" not in value:
                self.last_event_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        event, data, has_data = self._event or "message", "\n".join(self._data), self._has_data
        self._event, self._data, self._has_data = "", [], False
        if not has_data:
            return None
        return ServerSentEvent(event=event, data=data, id=self.last_event_id, retry=self.retry)


def _line_end(buffer: str) -> int | None:
    positions = [p for p in (buffer.find("\r"), buffer.find("\n")) if p >= 0]
    return min(positions) if positions else None
