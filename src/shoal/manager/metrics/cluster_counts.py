"""Counts of the cluster's objects, kept from the store's watch so that a scrape reads a few
integers instead of walking every task (swarmkit's collector does the same).

The counts are read once from the tables when following starts, then moved by each event:
a task's state change moves one task from one state's count to another's. A restore
(a snapshot installed on a manager far behind) replaces the tables without events, so the
counts are read again from the tables whenever the store has been restored since.
"""

import asyncio
from collections import Counter

from shoal.api.objects import Config, Network, Node, Secret, Service, StoredObject, Task
from shoal.api.types import NodeAvailability, NodeRole, NodeState, TaskState
from shoal.store import Action, Event, MemoryStore, ReadTx, Subscription

# The kinds counted; a node and a task are also counted by their state (and a node by role
# and availability).
COUNTED: tuple[type[StoredObject], ...] = (Node, Task, Service, Network, Secret, Config)
KINDS = frozenset(cls.KIND for cls in COUNTED)


def _moves_a_count(ev: Event) -> bool:
    """Whether an event can change a count: not queued if not (most updates of a task leave
    its state as it was: a desired state, a message, an address), which keeps the cost of
    counting off the store's write path."""
    if ev.action is not Action.UPDATE:
        return True
    obj, old = ev.obj, ev.old
    if isinstance(obj, Task):
        return not isinstance(old, Task) or obj.Status.State != old.Status.State
    return isinstance(obj, Node)


class ClusterCounts:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.totals: Counter[str] = Counter()  # by kind
        self.node_states: Counter[str] = Counter()
        self.node_roles: Counter[str] = Counter()
        self.node_availabilities: Counter[str] = Counter()
        self.task_states: Counter[str] = Counter()
        self._sub: Subscription | None = None
        self._restores = -1
        self._follower: asyncio.Task[None] | None = None

    # --- reading ----------------------------------------------------------------------------

    def refresh(self) -> None:
        """Bring the counts up to the store's present state (synchronous: a scrape calls it,
        so what it reports is what the store holds now)."""
        sub = self._sub
        if sub is None or sub.closed or self.store.restores != self._restores:
            self._recount()
            return
        while (ev := sub.get_nowait()) is not None:
            self._count(ev)

    def _recount(self) -> None:
        if self._sub is not None:
            self._sub.close()
        # Read and subscribe with no await between: every later change arrives as an event.
        view, self._sub = self.store.view_and_watch(kinds=KINDS, filt=_moves_a_count)
        self._restores = self.store.restores
        self._read(view)

    def _read(self, view: ReadTx) -> None:
        for counter in self._counters():
            counter.clear()
        for cls in COUNTED:
            self.totals[cls.KIND] = view.count(cls)
        for node in view.nodes():
            self._add_node(node, 1)
        for task in view.list(Task):
            self.task_states[task.Status.State.value] += 1

    def _counters(self) -> tuple[Counter[str], ...]:
        return (
            self.totals,
            self.node_states,
            self.node_roles,
            self.node_availabilities,
            self.task_states,
        )

    # --- following --------------------------------------------------------------------------

    def start(self) -> None:
        """Count now, and keep counting in the background, so that events do not pile up
        between scrapes."""
        self.refresh()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a scrape from plain code): each scrape catches up alone
        if self._follower is None:
            self._follower = loop.create_task(self._follow(), name="metrics: cluster counts")

    async def _follow(self) -> None:
        while (sub := self._sub) is not None:
            try:
                ev = await sub.get()
            except StopAsyncIteration:
                if self._sub is sub:
                    return  # closed by the store (the manager stopped), not by a recount
                continue
            if self.store.restores != self._restores:
                self._recount()  # the tables were replaced: the queued events are history
            elif self._sub is sub:
                self._count(ev)

    def abandon(self) -> None:
        """Stop following (the manager went away, or a new one replaced it)."""
        sub, self._sub = self._sub, None
        if sub is not None:
            sub.close()
        if self._follower is not None:
            self._follower.cancel()
            self._follower = None

    # --- one change -------------------------------------------------------------------------

    def _count(self, ev: Event) -> None:
        if ev.is_commit:
            return
        obj, old = ev.obj, ev.old
        if ev.action is Action.REMOVE:
            new: StoredObject | None = None
            old = obj
        else:
            new = obj
        if ev.action is Action.CREATE:
            old = None
        kind = ev.kind
        if old is None and new is not None:
            self.totals[kind] += 1
        elif new is None and old is not None:
            self.totals[kind] -= 1
        if kind == "task":
            was = old.Status.State if isinstance(old, Task) else None
            now = new.Status.State if isinstance(new, Task) else None
            if was != now:
                if was is not None:
                    self.task_states[was.value] -= 1
                if now is not None:
                    self.task_states[now.value] += 1
        elif kind == "node":
            if isinstance(old, Node):
                self._add_node(old, -1)
            if isinstance(new, Node):
                self._add_node(new, 1)

    def _add_node(self, node: Node, n: int) -> None:
        self.node_states[node.Status.State.value] += n
        self.node_roles[node.Role.value] += n
        self.node_availabilities[node.Spec.Availability.value] += n


# Every value a labelled count is reported for, zero or not, as Swarm reports them.
NODE_STATES = tuple(s.value for s in NodeState)
NODE_ROLES = tuple(r.value for r in NodeRole)
NODE_AVAILABILITIES = tuple(a.value for a in NodeAvailability)
TASK_STATES = tuple(s.value for s in TaskState)
