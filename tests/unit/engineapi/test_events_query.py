"""GET /events' query as Docker's daemon reads it: times, filters, and which kept events a
`since`/`until` replays."""

import contextlib
import json

import pytest

from shoal.engineapi.event_filter import EventFilter
from shoal.engineapi.event_log import EventLog, event_message
from shoal.engineapi.events import parse_timestamp
from shoal.errors import ShoalError
from shoal.manager.controlapi.filters import Filters

SEC = 1_000_000_000


@pytest.mark.parametrize(
    ("text", "nanos"),
    [
        ("", None),
        ("1796539857", 1796539857 * SEC),
        ("1796539857.5", 1796539857 * SEC + 500_000_000),
        ("1796539857.000000001", 1796539857 * SEC + 1),
        ("-5", -5 * SEC),
    ],
)
def test_timestamps_as_docker_reads_them(text, nanos):
    assert parse_timestamp(text) == nanos


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("abc", 'strconv.ParseInt: parsing "abc": invalid syntax'),
        ("12.5x", 'strconv.ParseInt: parsing "5x": invalid syntax'),
        (
            "2026-12-06T06:50:00Z",
            'strconv.ParseInt: parsing "2026-12-06T06:50:00Z": invalid syntax',
        ),
        (
            "99999999999999999999",
            'strconv.ParseInt: parsing "99999999999999999999": value out of range',
        ),
    ],
)
def test_bad_timestamps_in_strconvs_words_with_a_500(text, message):
    with pytest.raises(ShoalError) as err:
        parse_timestamp(text)
    assert err.value.message == message and err.value.status == 500


SERVICE = event_message("service", "create", "abc123", {"name": "web"}, "swarm", 10 * SEC)
NODE = event_message(
    "node", "update", "n1", {"name": "vm", "state.new": "ready"}, "swarm", 11 * SEC
)
CONTAINER = event_message(
    "container",
    "exec_start: sh -c date",
    "c0ffee",
    {"name": "web.1.xyz", "com.docker.swarm.service.name": "web"},
    "local",
    12 * SEC,
)


def matches(filters: dict, message: dict) -> bool:
    return EventFilter(Filters.parse(json.dumps(filters))).matches(message)


@pytest.mark.parametrize(
    ("filters", "service", "node", "container"),
    [
        ({}, True, True, True),
        ({"type": {"service": True}}, True, False, False),
        ({"type": ["service", "node"]}, True, True, False),
        ({"scope": {"swarm": True}}, True, True, False),
        ({"event": {"create": True}}, True, False, False),
        # A detail after a colon: the bare action matches it.
        ({"event": {"exec_start": True}}, False, False, True),
        # Name filters match ID or name, or a prefix of either, on events of every type.
        ({"service": {"web": True}}, True, False, True),
        ({"service": {"abc": True}}, True, False, False),
        ({"node": {"vm": True}}, False, True, False),
        ({"container": {"c0f": True}}, False, False, True),
        ({"service": {"web": True}, "type": {"service": True}}, True, False, False),
        ({"label": {"state.new=ready": True}}, False, True, False),
        ({"label": {"com.docker.swarm.service.name": True}}, False, False, True),
        # Keys the daemon does not know change nothing.
        ({"frobnicate": {"x": True}}, True, True, True),
    ],
)
def test_filters_as_dockers(filters, service, node, container):
    assert matches(filters, SERVICE) is service
    assert matches(filters, NODE) is node
    assert matches(filters, CONTAINER) is container


def test_replay_needs_since_or_until_and_keeps_the_last_ones():
    log = EventLog(limit=2)
    for message in (SERVICE, NODE, CONTAINER):
        log.publish(message)
    assert log.past(None, None, None) == []
    assert log.past(0, None, None) == [NODE, CONTAINER]
    assert log.past(11 * SEC, None, None) == [NODE, CONTAINER]
    assert log.past(0, 11 * SEC, None) == [NODE]
    assert log.past(0, None, lambda m: m["Type"] == "node") == [NODE]
    # As Docker's daemon: an `until` at or before the epoch bounds nothing.
    assert log.past(None, -5 * SEC, None) == [NODE, CONTAINER]


async def test_subscribers_get_new_messages_their_topic_takes():
    log = EventLog()
    log.publish(SERVICE)
    past, sub = log.subscribe(None, None, lambda m: m["Type"] == "node")
    assert past == []
    log.publish(CONTAINER)
    log.publish(NODE)
    assert await sub.get() == NODE
    sub.close()
    log.publish(NODE)
    assert sub._queue.empty()


class _Connected:
    """What merge() looks at of a request: a transport that is not closing."""

    class transport:
        @staticmethod
        def is_closing() -> bool:
            return False


async def test_sources_merge_into_one_stream_as_they_come():
    # The seam for the engine's own events: a second source joins the cluster's.
    import asyncio

    from shoal.engineapi.events import merge

    log = EventLog()

    async def cluster():
        _, sub = log.subscribe(None, None, None)
        try:
            while True:
                yield await sub.get()
        finally:
            sub.close()

    async def engine():
        yield CONTAINER
        await asyncio.sleep(0.05)
        yield CONTAINER

    seen = []
    stop = asyncio.get_running_loop().create_future()
    async with contextlib.aclosing(merge([cluster(), engine()], _Connected(), stop)) as stream:  # type: ignore[arg-type]
        async for message in stream:
            seen.append(message)
            if len(seen) == 1:
                log.publish(SERVICE)
            if len(seen) == 3:
                stop.set_result(None)
    assert sorted(m["Type"] for m in seen) == ["container", "container", "service"]
    assert not log._subs  # the cluster source was closed with the stream


async def test_an_until_that_falls_during_the_replay_still_replays_every_kept_message():
    # An `until` just ahead of the query (a client's rounded "now") used to end the stream
    # as soon as it fell, cutting the replay short: CI saw a replay of only its first message.
    import asyncio
    import datetime as dt
    from types import SimpleNamespace

    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from shoal.clock import SystemClock
    from shoal.engineapi.events import events
    from shoal.engineapi.responses import BACKEND

    class UntilFallsAtOnce(SystemClock):
        """Now is 100 s after the epoch and stays there; any wait is over at once."""

        def now(self) -> dt.datetime:
            return dt.datetime.fromtimestamp(100, dt.UTC)

        async def sleep(self, seconds: float) -> None:
            await asyncio.sleep(0)

    log = EventLog()
    kept = [
        event_message("service", "update", f"s{i}", {"name": "web"}, "swarm", 90 * SEC + i)
        for i in range(20)
    ]
    for message in kept:
        log.publish(message)
    app = web.Application()
    app[BACKEND] = SimpleNamespace(events=log, clock=UntilFallsAtOnce())
    app.router.add_get("/events", events)
    async with TestClient(TestServer(app)) as client:
        # `until` is 1 ns ahead of the query: the stream does not end before it has begun.
        resp = await client.get("/events", params={"since": "0", "until": "100.000000001"})
        lines = (await resp.read()).splitlines()
    assert [json.loads(line) for line in lines] == kept


async def test_new_messages_come_until_until_then_the_stream_ends():
    import asyncio

    from shoal.clock import FakeClock
    from shoal.engineapi.events import EventQuery, log_source

    log = EventLog()
    clock = FakeClock()
    query = EventQuery("", "20", None, 20 * SEC, EventFilter(Filters.parse("")), 10 * SEC)
    source = log_source(log, query, clock)
    first = asyncio.ensure_future(anext(source))
    await asyncio.sleep(0)
    log.publish(NODE)
    assert await asyncio.wait_for(first, 1) == NODE
    ending = asyncio.ensure_future(anext(source))
    await asyncio.sleep(0)
    await clock.advance(10.0)
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(ending, 1)
    assert not log._subs
