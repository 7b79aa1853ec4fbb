"""Watch events: what changed in the store, delivered to every subscriber in commit order."""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from shoal.api.objects import StoredObject
from shoal.store.proposal import Action


@dataclass(frozen=True, slots=True)
class Event:
    """One object changed. ``old`` is the previous version (None on create). A proposal's
    events are followed by one ``commit`` event (``obj`` None), so a consumer can act once
    per transaction."""

    action: Action | None
    obj: StoredObject | None
    old: StoredObject | None = None
    version: int = 0

    @property
    def is_commit(self) -> bool:
        return self.action is None

    @property
    def kind(self) -> str:
        assert self.obj is not None
        return self.obj.KIND


EventFilter = Callable[[Event], bool]
# Called with each proposal's events (its commit event last) as they are applied.
EventListener = Callable[[list[Event]], None]


class Subscription:
    """An unbounded queue of events. Iterate it, or ``get()``; ``close()`` when done. Once
    closed and emptied, ``get`` ends (StopAsyncIteration) every time it is called and
    ``get_nowait`` returns None.

    ``hub`` None: fed by its owner through ``put`` rather than by the store (the dispatcher's
    router, which sorts each change out for its sessions); such an owner overrides
    ``_detach`` to stop feeding it."""

    def __init__(
        self, hub: "WatchHub | None", kinds: frozenset[str] | None, filt: EventFilter | None
    ):
        self._hub = hub
        self._kinds = kinds
        self._filter = filt
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self.closed = False

    def put(self, ev: Event) -> None:
        """Queue ``ev`` as it is."""
        self._queue.put_nowait(ev)

    def _offer(self, ev: Event) -> None:
        if ev.is_commit:
            self._queue.put_nowait(ev)
            return
        if self._kinds is not None and ev.kind not in self._kinds:
            return
        if self._filter is not None and not self._filter(ev):
            return
        self._queue.put_nowait(ev)

    async def get(self) -> Event:
        ev = await self._queue.get()
        if ev is None:
            self._queue.put_nowait(None)  # for the next call too: closed stays closed
            raise StopAsyncIteration
        return ev

    def get_nowait(self) -> Event | None:
        """The next queued event, or None if none is queued."""
        try:
            ev = self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None
        if ev is None:
            self._queue.put_nowait(None)
            return None
        return ev

    def pending(self) -> int:
        return self._queue.qsize()

    async def settle(self, at_most: float) -> None:
        """Wait for a change or ``at_most`` seconds, whichever comes first, then drop what
        else is queued: for loops that look at the whole store again on any change, and
        also now and then for what changes without an event."""
        try:
            await asyncio.wait_for(self.get(), at_most)
        except TimeoutError:
            return
        while self.get_nowait() is not None:
            pass

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> Event:
        return await self.get()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._detach()
            self._queue.put_nowait(None)

    def _detach(self) -> None:
        """Be fed no more."""
        if self._hub is not None:
            self._hub._subs.discard(self)

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Listening:
    """A listener's place in the hub: ``close()`` and it is called no more."""

    def __init__(self, hub: "WatchHub", fn: EventListener) -> None:
        self._hub = hub
        self.fn = fn
        self.closed = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._hub._listeners.remove(self)


class WatchHub:
    def __init__(self) -> None:
        self._subs: set[Subscription] = set()
        self._listeners: list[Listening] = []

    def subscribe(
        self, kinds: frozenset[str] | None = None, filt: EventFilter | None = None
    ) -> Subscription:
        sub = Subscription(self, kinds, filt)
        self._subs.add(sub)
        return sub

    def listen(self, fn: EventListener) -> Listening:
        """Call ``fn`` synchronously with every proposal's events from now on: for one
        consumer that sorts the events out for many (the dispatcher's sessions), where a
        subscription each would queue every event once per consumer. ``fn`` runs while the
        store applies a proposal: it must be quick and must not raise."""
        listening = Listening(self, fn)
        self._listeners.append(listening)
        return listening

    def publish(self, events: list[Event]) -> None:
        for sub in list(self._subs):
            for ev in events:
                sub._offer(ev)
        for listening in list(self._listeners):
            listening.fn(events)

    def close_all(self) -> None:
        for sub in list(self._subs):
            sub.close()
        for listening in list(self._listeners):
            listening.close()
