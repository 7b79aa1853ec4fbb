"""The shape every orchestration loop shares: read the store once, then react to its events.

A loop subscribes to the kinds of objects it cares about and, in the same step, takes a view
of the store, so no change between the two is missed. ``init`` records what the view needs
doing; every event is noted by ``handle`` (pure bookkeeping, no writes), and at the end of each
committed transaction ``tick`` acts on what was noted, writing to the store.

``init`` may let the event loop run while it reads a large store (issue 15: a new leader's
first reads held its loop for most of a second at 100,000 tasks). It then reads one moment's
lists of objects, taken before its first pause: the store replaces objects and never changes
them in place, so what ``init`` notes is what the view said, and every change after it comes as
an event, handled once ``init`` and the first ``tick`` are done.
"""

from abc import ABC, abstractmethod
from typing import ClassVar

from shoal.clock import BackgroundTurns, Clock
from shoal.store import Event, MemoryStore, ReadTx


class ReconcileLoop(ABC):
    # The object kinds whose changes this loop reacts to ("service", "task", "node"...).
    KINDS: ClassVar[frozenset[str]]

    def __init__(self, store: MemoryStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def run(self) -> None:
        view, sub = self.store.view_and_watch(kinds=set(self.KINDS))
        try:
            await self.init(view)
            await self.tick()
            # A subscription with events queued hands them over without a pause: a large
            # commit's 100,000 events held a leader's loop 1.6 s in ``handle`` alone (issue 15,
            # the 1,000-node fleet, where it cost the leadership). The loop runs every
            # LOOP_SLICE of handling; ``handle`` only takes notes, so nothing is decided apart.
            turns = BackgroundTurns()
            async for ev in sub:
                if ev.is_commit:
                    await self.tick()
                    turns.restart()
                else:
                    self.handle(ev)
                    await turns.between()
        finally:
            sub.close()

    @abstractmethod
    async def init(self, view: ReadTx) -> None:
        """Note what the store as it is now needs doing."""

    @abstractmethod
    def handle(self, ev: Event) -> None:
        """Note what one change needs doing (no writes here: ``tick`` makes them)."""

    @abstractmethod
    async def tick(self) -> None:
        """Do what was noted since the last tick."""
