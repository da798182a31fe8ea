"""The SSE parser (WHATWG rules) and the event iterators' reconnection, on canned streams."""

from __future__ import annotations

import json

import httpx
import pytest

from vps.client import AsyncClient, Client, RetryPolicy
from vps.client.sse import Comment, ServerSentEvent, SSEDecoder


def _parse(*chunks: str) -> list[ServerSentEvent | Comment]:
    decoder = SSEDecoder()
    items: list[ServerSentEvent | Comment] = []
    for chunk in chunks:
        items.extend(decoder.feed(chunk))
    return items


def _messages(*chunks: str) -> list[ServerSentEvent]:
    return [item for item in _parse(*chunks) if isinstance(item, ServerSentEvent)]


def test_fields_and_dispatch() -> None:
    (message,) = _messages('id: 12\nevent: server.status\ndata: {"a": 1}\n\n')
    assert message == ServerSentEvent(event="server.status", data='{"a": 1}', id="12", retry=None)


def test_multi_line_data_joins_with_lf() -> None:
    (message,) = _messages("data: one\ndata:two\ndata\n\n")
    assert message.data == "one\ntwo\n"
    assert message.event == "message"


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_every_line_ending(newline: str) -> None:
    text = f"event: x{newline}data: 1{newline}{newline}data: 2{newline}{newline}"
    assert [m.data for m in _messages(text)] == ["1", "2"]


def test_crlf_split_across_chunks_is_one_line_ending() -> None:
    messages = _messages("data: 1\r", "\n\r", "\ndata: 2\r\n\r\n")
    assert [m.data for m in messages] == ["1", "2"]


def test_a_message_split_anywhere_gives_the_same_result() -> None:
    text = 'id: 5\r\nevent: server.status\r\ndata: {"x":\r\ndata: 1}\r\n\r\n: hb\r\n'
    whole = _parse(text)
    for cut in range(1, len(text)):
        assert _parse(text[:cut], text[cut:]) == whole


def test_comments_are_surfaced_not_dispatched() -> None:
    items = _parse(": heartbeat\n\n:\ndata: x\n\n")
    assert items[0] == Comment("heartbeat")
    assert items[1] == Comment("")
    assert [m.data for m in items if isinstance(m, ServerSentEvent)] == ["x"]


def test_no_data_means_no_message_and_event_name_resets() -> None:
    messages = _messages("event: lonely\n\ndata: y\n\n")
    assert [(m.event, m.data) for m in messages] == [("message", "y")]


def test_id_persists_and_ignores_nul_and_retry_needs_digits() -> None:
    decoder = SSEDecoder()
    messages = list(decoder.feed("id: 3\ndata: a\n\ndata: b\n\nid: 4\0\nretry: 1x\ndata: c\n\n"))
    assert [m.id for m in messages if isinstance(m, ServerSentEvent)] == ["3", "3", "3"]
    assert decoder.retry is None
    list(decoder.feed("retry: 2500\n\n"))
    assert decoder.retry == 2500
    assert decoder.last_event_id == "3"


def test_field_without_colon_and_without_space() -> None:
    (message,) = _messages("event:e\ndata\nid\n\n")
    assert message.event == "e"
    assert message.data == ""
    assert message.id == ""


def test_unknown_fields_are_ignored_and_bom_is_stripped() -> None:
    (message,) = _messages("\ufeffdata: x\nfoo: bar\n\n")
    assert message.data == "x"


def test_an_unfinished_message_is_not_dispatched() -> None:
    assert _messages("data: x\n") == []


STATUS = {
    "type": "server.status",
    "server_id": 5,
    "action_id": 12,
    "status": "active",
    "previous_status": "provisioning",
    "error": None,
    "occurred_at": "2026-11-28T23:59:59Z",
}


def _event_text(event_id: int, **fields: object) -> str:
    payload = {**STATUS, "id": event_id, **fields}
    return f"id: {event_id}\nevent: {payload['type']}\ndata: {json.dumps(payload)}\n\n"


class StreamServer:
    """Answers stream requests with canned bodies, one per connection, recording headers."""

    def __init__(self, bodies: list[str]) -> None:
        self.bodies = iter(bodies)
        self.last_event_ids: list[str | None] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.last_event_ids.append(request.headers.get("last-event-id"))
        return httpx.Response(
            200, headers={"Content-Type": "text/event-stream"}, content=next(self.bodies)
        )


def test_events_are_decoded_and_a_dropped_stream_resumes_after_the_last_id() -> None:
    server = StreamServer(
        [
            ": hello\n\n" + _event_text(1, status="provisioning") + _event_text(2),
            "retry: 10\n\n"
            + 'event: reset\ndata: {"type": "reset", "reason": "expired"}\n\n'
            + _event_text(3, status="deleted"),
        ]
    )
    sleeps: list[float] = []
    client = Client(
        "http://api.test",
        "vps_token",
        transport=httpx.MockTransport(server.handler),
        sleep=sleeps.append,
        retry_policy=RetryPolicy(random=lambda: 0.0),
    )
    events = list(client.servers.events(5, last_event_id=None))
    assert [(e.id, e.type, e.status) for e in events] == [
        (1, "server.status", "provisioning"),
        (2, "server.status", "active"),
        (None, "reset", None),
        (3, "server.status", "deleted"),
    ]
    assert events[1].previous_status == "provisioning"
    assert events[1].server_id == 5
    assert events[2].reason == "expired"
    assert server.last_event_ids == [None, "2"]
    assert sleeps == [0.0]  # the reconnection delay (jitter drew 0)


async def test_async_events_resume_with_last_event_id() -> None:
    server = StreamServer([_event_text(8, status="starting"), _event_text(9, status="deleted")])
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async with AsyncClient(
        "http://api.test",
        "vps_token",
        transport=httpx.MockTransport(server.handler),
        sleep=sleep,
    ) as client:
        statuses = [event.status async for event in client.servers.events(5, last_event_id=7)]
    assert statuses == ["starting", "deleted"]
    assert server.last_event_ids == ["7", "8"]
    assert len(sleeps) == 1
