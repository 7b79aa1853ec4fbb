"""GET /events: the node's events as Docker's daemon streams them (api/server/router/system):
past ones kept since ``since`` (up to ``until``), then each new one as it happens, one JSON
object per line, flushed at once, with no keepalive; the stream ends at ``until`` (at once
when it has passed) or when the client goes.

The stream merges event sources, each an async iterator of messages already filtered and
replayed for the query (``EventQuery``): the node's own log (the cluster's events, on a
manager; see cluster_events) and the node's Docker Engine's (containers, images, local
networks...), which Docker's daemon writes into the same stream (``event_sources``).
"""

import asyncio
import contextlib
import json
import math
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from shoal.clock import Clock
from shoal.engineapi.engine_proxy import ENGINE
from shoal.engineapi.event_filter import EventFilter
from shoal.engineapi.event_log import EventLog, Message, unix_nano
from shoal.engineapi.responses import BACKEND
from shoal.errors import InvalidArgument, ShoalError
from shoal.manager.controlapi.filters import Filters

# How often a stream with nothing to send looks whether its client has gone.
DISCONNECT_POLL = 0.5


@dataclass(frozen=True)
class EventQuery:
    since: str  # as the client sent them (Docker's errors quote them)
    until: str
    since_nano: int | None
    until_nano: int | None
    filters: EventFilter
    now_nano: int  # when the query came
    raw_filters: str = ""  # as sent, for a source that asks elsewhere (the engine)

    @property
    def only_past(self) -> bool:
        """``until`` has passed: the stream is what was kept, then ends."""
        return self.until_nano is not None and self.until_nano < self.now_nano


def parse_timestamp(value: str) -> int | None:
    """A time given as Docker's daemon takes it (``seconds[.fraction]``, what Docker's CLI
    sends for 10m or an RFC 3339 date), as nanoseconds since the epoch; None when empty."""
    if value == "":
        return None
    seconds_text, dot, fraction_text = value.partition(".")
    seconds = _parse_int(seconds_text)
    if not dot:
        return seconds * 1_000_000_000
    fraction = _parse_int(fraction_text)
    # As Docker's daemon: the digits after the point scaled to nanoseconds.
    nanos = int(fraction * math.pow(10, 9 - len(fraction_text)))
    return seconds * 1_000_000_000 + nanos


def _parse_int(text: str) -> int:
    """Go's strconv.ParseInt(text, 10, 64), with its error (which Docker's daemon passes on
    as it is, a 500)."""
    body = text[1:] if text[:1] in ("+", "-") else text
    if not body or not body.isascii() or not body.isdigit():
        raise ShoalError(f'strconv.ParseInt: parsing "{text}": invalid syntax')
    number = int(text)
    if not -(1 << 63) <= number < 1 << 63:
        raise ShoalError(f'strconv.ParseInt: parsing "{text}": value out of range')
    return number


def read_query(request: web.Request) -> EventQuery:
    since = request.query.get("since", "")
    until = request.query.get("until", "")
    since_nano, until_nano = parse_timestamp(since), parse_timestamp(until)
    if until_nano is not None and since_nano is not None and until_nano < since_nano:
        raise InvalidArgument(f"`since` time ({since}) cannot be after `until` time ({until})")
    raw_filters = request.query.get("filters", "")
    filters = EventFilter(Filters.parse(raw_filters))
    now = unix_nano(request.app[BACKEND].clock.now())
    return EventQuery(since, until, since_nano, until_nano, filters, now, raw_filters)


async def log_source(log: EventLog, query: EventQuery, clock: Clock) -> AsyncIterator[Message]:
    """The messages of one event log for a query: every one kept, then (unless ``until``
    has passed) each new one until ``until``. The kept ones all come whenever ``until``
    falls, as Docker's daemon writes its replay before it looks at the time."""
    topic = None if query.filters.empty else query.filters.matches
    past, sub = log.subscribe(query.since_nano, query.until_nano, topic)
    try:
        for message in past:
            yield message
        if query.only_past:
            return
        if query.until_nano is None:
            while True:
                yield await sub.get()
        ends = asyncio.ensure_future(clock.sleep((query.until_nano - query.now_nano) / 1e9))
        try:
            while not ends.done():
                arrived = asyncio.ensure_future(sub.get())
                await asyncio.wait({arrived, ends}, return_when=asyncio.FIRST_COMPLETED)
                if not arrived.done():
                    arrived.cancel()
                    return
                yield arrived.result()
        finally:
            ends.cancel()
    finally:
        sub.close()


def event_sources(request: web.Request, query: EventQuery) -> list[AsyncIterator[Message]]:
    """Where this node's events come from: its own log (the cluster's, on a manager) and,
    as Docker's daemon writes both into one stream, the node's Docker Engine's (its own GET
    /events with this query, which replays, filters and ends at ``until`` by itself)."""
    backend = request.app[BACKEND]
    sources = [log_source(backend.events, query, backend.clock)]
    engine = request.app.get(ENGINE)
    if engine is not None:
        sources.append(engine.events(query.since, query.until, query.raw_filters))
    return sources


async def merge(
    sources: Sequence[AsyncIterator[Message]],
    request: web.Request,
    stop: "asyncio.Future[None] | None" = None,
) -> AsyncGenerator[Message]:
    """Messages from all sources as each comes, until every source ends, ``stop`` is done
    or the client hangs up (noticed even while nothing comes)."""
    pending: dict[asyncio.Future[Message], AsyncIterator[Message]] = {
        asyncio.ensure_future(anext(s)): s for s in sources
    }
    try:
        while pending:
            waiting: set[asyncio.Future[Any]] = set(pending)
            if stop is not None:
                waiting.add(stop)
            done, _ = await asyncio.wait(
                waiting, timeout=DISCONNECT_POLL, return_when=asyncio.FIRST_COMPLETED
            )
            if stop is not None and stop.done():
                return
            for fut in done:
                source = pending.pop(fut)
                message: Message
                try:
                    message = fut.result()
                except StopAsyncIteration:
                    continue
                pending[asyncio.ensure_future(anext(source))] = source
                yield message
            transport = request.transport
            if transport is None or transport.is_closing():
                return
    finally:
        for fut in pending:
            fut.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for source in sources:
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()


async def events(request: web.Request) -> web.StreamResponse:
    query = read_query(request)
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    await resp.prepare(request)  # headers go out now, before any event exists
    try:
        async with contextlib.aclosing(merge(event_sources(request, query), request)) as messages:
            async for message in messages:
                await resp.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
        await resp.write_eof()
    except ConnectionResetError:
        pass  # the client hung up; the sources have been closed on the way out
    return resp
