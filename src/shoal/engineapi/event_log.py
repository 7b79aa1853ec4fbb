"""The node's log of events, as Docker's daemon keeps it (daemon/events): the last 256
messages for clients that ask for past ones (``since``), and every new one handed at once to
each subscriber whose filter takes it.

A message is a dict as Docker's daemon writes it to ``GET /events``: ``Type``, ``Action``,
``Actor`` (``ID``, ``Attributes``), ``scope``, ``time`` (seconds) and ``timeNano``.
"""

import asyncio
import datetime as dt
from collections import deque
from collections.abc import Callable
from typing import Any

# Docker's daemon keeps this many events for `since` (daemon/events: eventsLimit).
EVENTS_LIMIT = 256

Message = dict[str, Any]
Topic = Callable[[Message], bool]


def unix_nano(t: dt.datetime) -> int:
    """A time as nanoseconds since the epoch (ours have microseconds)."""
    t = t if t.tzinfo else t.replace(tzinfo=dt.UTC)
    delta = t - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def event_message(
    type_: str,
    action: str,
    actor_id: str,
    attributes: dict[str, str],
    scope: str,
    time_nano: int,
) -> Message:
    """A message with Docker's fields in Docker's order (its clients print the JSON as it
    comes with ``--format '{{json .}}'``)."""
    return {
        "Type": type_,
        "Action": action,
        "Actor": {"ID": actor_id, "Attributes": attributes},
        "scope": scope,
        "time": time_nano // 1_000_000_000,
        "timeNano": time_nano,
    }


class EventSubscription:
    """New messages a topic takes, in the order they were published. ``close()`` when done."""

    def __init__(self, log: "EventLog", topic: Topic | None) -> None:
        self._log = log
        self._topic = topic
        self._queue: asyncio.Queue[Message] = asyncio.Queue()

    def offer(self, message: Message) -> None:
        if self._topic is None or self._topic(message):
            self._queue.put_nowait(message)

    async def get(self) -> Message:
        return await self._queue.get()

    def close(self) -> None:
        self._log._subs.discard(self)


class EventLog:
    def __init__(self, limit: int = EVENTS_LIMIT) -> None:
        self._events: deque[Message] = deque(maxlen=limit)
        self._subs: set[EventSubscription] = set()

    def publish(self, message: Message) -> None:
        self._events.append(message)
        for sub in list(self._subs):
            sub.offer(message)

    def subscribe(
        self, since_nano: int | None, until_nano: int | None, topic: Topic | None
    ) -> tuple[list[Message], EventSubscription]:
        """The kept messages from ``since`` to ``until`` that the topic takes (none when
        neither is given), and a subscription to every new one the topic takes, whatever
        its time (``until`` is the caller's to enforce), as Docker's daemon answers."""
        return self.past(since_nano, until_nano, topic), self._subscribe(topic)

    def _subscribe(self, topic: Topic | None) -> EventSubscription:
        sub = EventSubscription(self, topic)
        self._subs.add(sub)
        return sub

    def past(
        self, since_nano: int | None, until_nano: int | None, topic: Topic | None
    ) -> list[Message]:
        if since_nano is None and until_nano is None:
            return []
        since = since_nano or 0
        # Docker's daemon ignores an `until` at or before the epoch here (only a positive
        # one bounds the replay), so `until=-5` replays everything it kept.
        until = until_nano if until_nano is not None and until_nano > 0 else None
        found: list[Message] = []
        for message in reversed(self._events):
            if message["timeNano"] < since:
                break
            if until is not None and message["timeNano"] > until:
                continue
            if topic is None or topic(message):
                found.append(message)
        found.reverse()
        return found
