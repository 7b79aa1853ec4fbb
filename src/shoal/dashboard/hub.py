"""The dashboard's picture of the cluster, kept from a manager's own store (leader or not:
every manager applies the whole log), and what each open page is sent of it.

A page is sent, on connecting, a summary of every node, service and network and the recent
events (a ``reset``); then, as the store changes, only the summaries that changed (a
``delta``: a change at once, what follows it at most one per ``FLUSH_INTERVAL``) and each new
event. Tasks are sent only for the service or node a page selected (``tasks``, then
``taskdelta``): a change of one task among 100,000 sends a page a few small dicts, not the
task list.
"""

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from shoal.api.objects import Cluster, Network, Node, Service, StoredObject, Task
from shoal.api.types import TaskState
from shoal.clock import Clock
from shoal.dashboard.summaries import (
    Summary,
    cluster_summary,
    network_summary,
    node_summary,
    service_summary,
    task_row,
)
from shoal.dashboard.tally import Tally
from shoal.engineapi.event_log import EventLog, Message
from shoal.manager.controlapi.jobs import job_service_status
from shoal.store import MemoryStore
from shoal.store.memory import ReadTx
from shoal.store.proposal import Action
from shoal.store.watch import Event, Subscription

log = logging.getLogger(__name__)

KINDS = ("node", "service", "task", "network", "cluster")
# A change goes to the pages at once, and those that follow it within this many seconds go
# together after it.
FLUSH_INTERVAL = 0.1
# How often the hub looks whether the node's manager came or went, or its store was replaced
# from a snapshot (which tells its watchers nothing).
CHECK_INTERVAL = 1.0
# Tasks counted (or changes applied) between two yields to the node's other work.
LOAD_CHUNK = 500
# Events a page is sent on connecting.
RECENT_EVENTS = 100
# At most this many tasks of a selection are sent (current ones first, then the newest of
# their history); the page says how many there are in all.
MAX_TASK_ROWS = 1000
# A page that has this many messages waiting is too slow: it is dropped, and starts afresh
# when it reconnects.
MAX_BACKLOG = 2000

T = TypeVar("T", bound=StoredObject)
Selection = tuple[str, str]  # ("service" | "node", ID)


class DashboardSource(Protocol):
    """What the dashboard needs of its node (the daemon provides it)."""

    # The node's events, as GET /events streams them (the cluster's, while a manager).
    events: EventLog

    def dashboard_store(self) -> MemoryStore | None:
        """The node's manager's store; None while the node is no (unlocked) manager."""
        ...

    def dashboard_node_id(self) -> str:
        """The ID of the node serving the page ("" outside a swarm)."""
        ...


@dataclass(eq=False)
class Viewer:
    """One open page: the messages waiting for it and what it selected."""

    selection: Selection | None = None
    queue: asyncio.Queue[dict[str, Any] | None] = field(default_factory=asyncio.Queue)
    dropped: bool = False

    def send(self, message: dict[str, Any]) -> None:
        if self.dropped:
            return
        if self.queue.qsize() >= MAX_BACKLOG:
            self.drop()
            return
        self.queue.put_nowait(message)

    def drop(self) -> None:
        if not self.dropped:
            self.dropped = True
            self.queue.put_nowait(None)

    async def next(self) -> dict[str, Any] | None:
        """The next message; None once the page was dropped."""
        return await self.queue.get()


def sort_tasks(tasks: list[Task]) -> None:
    """Current tasks first, then the history; the newest first within each."""
    tasks.sort(key=lambda t: t.CreatedAt, reverse=True)
    tasks.sort(key=lambda t: t.DesiredState > TaskState.RUNNING)


class Hub:
    def __init__(self, source: DashboardSource, clock: Clock) -> None:
        self.source = source
        self.clock = clock
        self.viewers: set[Viewer] = set()
        self.store: MemoryStore | None = None
        self.version = 0
        self.tally = Tally()
        self.nodes: dict[str, Summary] = {}
        self.services: dict[str, Summary] = {}
        self.networks: dict[str, Summary] = {}
        self.cluster: Summary | None = None
        self.recent_events: deque[Message] = deque(maxlen=RECENT_EVENTS)
        # What changed since the last delta.
        self._dirty: dict[str, set[str]] = {"node": set(), "service": set(), "network": set()}
        self._cluster_dirty = False
        # Tasks changed since the last delta, and those removed (as they were).
        self._tasks: dict[str, Task] = {}
        self._removed_tasks: dict[str, Task] = {}
        self._loaded = False

    # --- pages ------------------------------------------------------------------------------

    def attach(self) -> Viewer:
        viewer = Viewer()
        self.viewers.add(viewer)
        viewer.send(self.state())
        return viewer

    def detach(self, viewer: Viewer) -> None:
        self.viewers.discard(viewer)
        viewer.drop()

    def select(self, viewer: Viewer, selection: Selection | None) -> None:
        viewer.selection = selection
        if selection is not None:
            viewer.send(self.task_list(selection))

    def state(self) -> dict[str, Any]:
        """Everything a page starts from (also ``GET /api/state``)."""
        return {
            "type": "reset",
            "manager": self.store is not None,
            "servedBy": self.source.dashboard_node_id(),
            "version": self.version,
            "cluster": self.cluster,
            "nodes": list(self.nodes.values()),
            "services": list(self.services.values()),
            "networks": list(self.networks.values()),
            "events": list(self.recent_events),
        }

    def task_list(self, selection: Selection) -> dict[str, Any]:
        kind, ident = selection
        tasks: list[Task] = []
        if self.store is not None:
            view = self.store.view()
            if kind == "service":
                tasks = view.tasks_of_service(ident)
            elif kind == "node":
                tasks = view.tasks_on_node(ident)
        sort_tasks(tasks)
        return {
            "type": "tasks",
            "selection": {"kind": kind, "id": ident},
            "total": len(tasks),
            "tasks": [task_row(t) for t in tasks[:MAX_TASK_ROWS]],
        }

    def _broadcast(self, message: dict[str, Any]) -> None:
        for viewer in list(self.viewers):
            viewer.send(message)
            if viewer.dropped:
                self.viewers.discard(viewer)

    # --- following the store ----------------------------------------------------------------

    async def run(self) -> None:
        """Follow the node's store (whichever it has, as it changes) and its events, until
        cancelled."""
        events = asyncio.create_task(self._follow_events(), name="dashboard events")
        try:
            while True:
                store = self.source.dashboard_store()
                if store is None:
                    if self.store is not None or not self._loaded:
                        await self._load(None)
                    await self.clock.sleep(CHECK_INTERVAL)
                    continue
                try:
                    with store.watch(kinds=KINDS) as sub:
                        await self._load(store)
                        await self._follow(store, sub)
                except Exception:
                    # A page that stops following is worse than one that starts afresh.
                    log.exception("dashboard: following the store failed; reading it again")
                    await self.clock.sleep(CHECK_INTERVAL)
        finally:
            events.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await events

    async def _load(self, store: MemoryStore | None) -> None:
        """Read the whole store afresh and send every page a reset.

        The tasks are counted a chunk at a time, letting the node's other work (raft
        heartbeats among it) run in between: from the tasks as they were when this began (the
        store replaces an object on each change, never changes one), the changes made
        meanwhile being queued on the caller's watch, which applies them next."""
        self.store = store
        self.tally = Tally()
        self.nodes, self.services, self.networks = {}, {}, {}
        self.cluster = None
        self._dirty = {"node": set(), "service": set(), "network": set()}
        self._cluster_dirty = False
        self._tasks, self._removed_tasks = {}, {}
        self._loaded = True
        self.version = store.version if store is not None else 0
        if store is not None:
            tasks = store.view().list(Task)
            for start in range(0, len(tasks), LOAD_CHUNK):
                for task in tasks[start : start + LOAD_CHUNK]:
                    self.tally.put(task)
                await asyncio.sleep(0)
            view = store.view()
            for node in view.nodes():
                self.nodes[node.ID] = node_summary(node, self.tally.node(node.ID))
            for service in view.services():
                self.services[service.ID] = self._service_summary(view, service)
            for network in view.networks():
                self.networks[network.ID] = network_summary(network)
            self.cluster = cluster_summary(view.cluster())
        state = self.state()
        self._broadcast(state)
        for viewer in list(self.viewers):
            if viewer.selection is not None:
                viewer.send(self.task_list(viewer.selection))

    async def _follow(self, store: MemoryStore, sub: Subscription) -> None:
        """Apply the store's changes until its node stops being a manager (or has another
        store)."""
        while True:
            try:
                event = await asyncio.wait_for(sub.get(), CHECK_INTERVAL)
            except TimeoutError:
                if self.source.dashboard_store() is not store:
                    return
                if store.version != self.version and sub.pending() == 0:
                    # Replaced from a leader's snapshot: no events tell what changed.
                    await self._load(store)
                continue
            except StopAsyncIteration:  # the store was closed
                return
            self._apply(event)
            # A commit's changes are all queued at once: they go out together, at once.
            applied = 0
            while (queued := sub.get_nowait()) is not None:
                self._apply(queued)
                applied += 1
                if applied % LOAD_CHUNK == 0:
                    await asyncio.sleep(0)  # a long burst: let the node's other work run
            self._flush(store.view())
            # What comes in the meantime waits, so that a burst goes out as a few deltas
            # rather than one per commit.
            await self.clock.sleep(FLUSH_INTERVAL)

    def _apply(self, event: Event) -> None:
        if event.is_commit:
            self.version = max(self.version, event.version)
            return
        obj = event.obj
        assert obj is not None
        removed = event.action is Action.REMOVE
        if isinstance(obj, Task):
            # (A task is assigned a node once and never moves: its node's list is the same
            # before and after any change.)
            if removed:
                services, nodes = self.tally.remove(obj.ID)
                self._tasks.pop(obj.ID, None)
                self._removed_tasks[obj.ID] = obj
            else:
                services, nodes = self.tally.put(obj)
                self._tasks[obj.ID] = obj
            self._dirty["service"] |= services
            self._dirty["node"] |= nodes
        elif isinstance(obj, Cluster):
            self._cluster_dirty = True
        elif isinstance(obj, Node | Service | Network):
            self._dirty[obj.KIND].add(obj.ID)

    def _flush(self, view: ReadTx) -> None:
        """Send every page what changed since the last flush."""
        delta: dict[str, Any] = {"type": "delta", "version": self.version}
        for key, change in (
            ("nodes", self._flush_table(view, Node, self.nodes, self._node_summary)),
            ("services", self._flush_table(view, Service, self.services, self._service_summary)),
            ("networks", self._flush_table(view, Network, self.networks, self._network_summary)),
        ):
            if change is not None:
                delta[key] = change
        if self._cluster_dirty:
            cluster = cluster_summary(view.cluster())
            if cluster != self.cluster:
                self.cluster = delta["cluster"] = cluster
        self._dirty = {"node": set(), "service": set(), "network": set()}
        self._cluster_dirty = False
        if len(delta) > 2:
            self._broadcast(delta)
        if self._tasks or self._removed_tasks:
            self._send_task_deltas()
        self._tasks, self._removed_tasks = {}, {}

    def _flush_table(
        self,
        view: ReadTx,
        cls: type[T],
        table: dict[str, Summary],
        make: Callable[[ReadTx, T], Summary],
    ) -> dict[str, list] | None:
        """The summaries of ``cls`` that changed or went, or None."""
        upserts: list[Summary] = []
        removes: list[str] = []
        for ident in self._dirty[cls.KIND]:
            obj = view.get(cls, ident)
            if obj is None:
                if table.pop(ident, None) is not None:
                    removes.append(ident)
                continue
            summary = make(view, obj)
            if table.get(ident) != summary:
                table[ident] = summary
                upserts.append(summary)
        if not (upserts or removes):
            return None
        return {"upsert": upserts, "remove": removes}

    def _send_task_deltas(self) -> None:
        by_selection: dict[Selection, dict[str, list]] = {}
        for viewer in self.viewers:
            if viewer.selection is not None:
                by_selection.setdefault(viewer.selection, {"upsert": [], "remove": []})
        if not by_selection:
            return
        for changes, task_list in (("upsert", self._tasks), ("remove", self._removed_tasks)):
            for task in task_list.values():
                for selection in (("service", task.ServiceID), ("node", task.NodeID or "")):
                    change = by_selection.get(selection)
                    if change is not None:
                        change[changes].append(task_row(task) if changes == "upsert" else task.ID)
        for viewer in list(self.viewers):
            if viewer.selection is None:
                continue
            change = by_selection[viewer.selection]
            if change["upsert"] or change["remove"]:
                kind, ident = viewer.selection
                viewer.send(
                    {"type": "taskdelta", "selection": {"kind": kind, "id": ident}, **change}
                )

    # --- summaries --------------------------------------------------------------------------

    def _node_summary(self, view: ReadTx, node: Node) -> Summary:
        return node_summary(node, self.tally.node(node.ID))

    def _network_summary(self, view: ReadTx, network: Network) -> Summary:
        return network_summary(network)

    def _service_summary(self, view: ReadTx, service: Service) -> Summary:
        mode = service.Spec.Mode
        counts = self.tally.service(service.ID)
        running, completed = counts.running, 0
        if mode.is_job:
            # A job counts its current iteration's tasks only.
            status = job_service_status(service, view.tasks_of_service(service.ID))
            running, desired, completed = (
                status.RunningTasks,
                status.DesiredTasks,
                status.CompletedTasks,
            )
        elif mode.Replicated is not None:
            desired = mode.Replicated.Replicas
        else:
            desired = counts.wanted
        version = service.SpecVersion.Index if service.SpecVersion is not None else None
        updated = counts.running_by_version.get(version, 0)
        return service_summary(service, running, desired, completed, updated)

    # --- events -----------------------------------------------------------------------------

    async def _follow_events(self) -> None:
        past, sub = self.source.events.subscribe(0, None, None)
        try:
            self.recent_events.extend(past)
            while True:
                message = await sub.get()
                self.recent_events.append(message)
                self._broadcast({"type": "event", "event": message})
        finally:
            sub.close()
