"""The task reaper: deletes task history beyond the cluster's TaskHistoryRetentionLimit per
slot (per node for global services), tasks with desired ``remove`` once they stopped (or if
they never got to a node), and tasks whose service no longer exists.

The limit counts every task of the slot, the current one included: with 5, a slot shows its
running task and 4 older ones (swarmkit's taskreaper). A negative limit keeps all history; 0
keeps none but the tasks still running. When the restart policy limits attempts, at least
MaxAttempts + 1 tasks are kept instead, so the restart history can be rebuilt by a new leader.
"""

import logging
from collections.abc import Callable
from functools import partial
from typing import ClassVar

from shoal.api.objects import Cluster, Node, Service, Task
from shoal.api.types import NodeState, TaskState
from shoal.clock import BackgroundTurns, Clock
from shoal.manager.orchestrator.reconcile_loop import ReconcileLoop
from shoal.manager.orchestrator.restart_policy import restart_policy
from shoal.manager.orchestrator.task import SlotKey, is_global, slot_key, task_timestamp
from shoal.manager.orchestrator.waiting import write_batch
from shoal.store import Event, MemoryStore, ReadTx, Tx
from shoal.store.proposal import Action

log = logging.getLogger(__name__)

DEFAULT_RETENTION = 5
STEP = 500  # tasks (or slots) looked at between two looks at the clock


# --- decisions -------------------------------------------------------------------------------


def retention_limit(cluster: Cluster | None) -> int:
    if cluster is None:
        return DEFAULT_RETENTION
    limit = cluster.Spec.Orchestration.TaskHistoryRetentionLimit
    return 0 if limit is None else limit


def slot_retention(limit: int, service: Service) -> int:
    policy = restart_policy(service.Spec.TaskTemplate)
    if policy.max_attempts > 0:
        return policy.max_attempts + 1
    return limit


def is_stopped(task: Task) -> bool:
    return task.Status.State > TaskState.RUNNING


def node_lost(node: Node | None) -> bool:
    return node is None or node.Status.State == NodeState.DOWN


def abandoned(task: Task, node: Node | None) -> bool:
    """A task retired by the orchestrator on a node that is down or gone: its agent cannot
    report it stopped. If the node comes back, its agent drops a task no longer in the store."""
    # Desired ``complete`` is a job task meant to run (to completion), not one retired.
    return task.DesiredState > TaskState.COMPLETE and bool(task.NodeID) and node_lost(node)


def will_never_run(task: Task) -> bool:
    return task.Status.State < TaskState.ASSIGNED and task.DesiredState > TaskState.COMPLETE


def is_done(task: Task, lost: bool) -> bool:
    """Whether a slot's history may lose ``task``: stopped, never to run, or ``lost``."""
    return is_stopped(task) or will_never_run(task) or lost


def removable(task: Task, node: Node | None = None) -> bool:
    """A task given desired ``remove`` that may go now: stopped, never sent to a node, or on
    a node that is down or gone."""
    return task.DesiredState == TaskState.REMOVE and (
        task.Status.State < TaskState.ASSIGNED
        or task.Status.State >= TaskState.COMPLETE
        or abandoned(task, node)
    )


def history_to_delete(
    tasks: list[Task], keep: int, lost: Callable[[Task], bool] = lambda t: False
) -> tuple[list[Task], int]:
    """(tasks to delete, number still running) for one slot holding ``tasks``: the oldest
    stopped ones (or ``lost``: retired on a node that is gone) until at most ``keep`` remain.
    Running tasks are never deleted. A negative ``keep`` keeps everything."""
    if keep < 0 or len(tasks) <= keep:
        return [], 0

    def done(t: Task) -> bool:
        return is_done(t, lost(t))

    running = sum(1 for t in tasks if not done(t))
    excess = len(tasks) - keep
    doomed: list[Task] = []
    for t in sorted(tasks, key=task_timestamp):
        if len(doomed) == excess:
            break
        if done(t):
            doomed.append(t)
    return doomed, running


# --- the loop --------------------------------------------------------------------------------


class TaskReaper(ReconcileLoop):
    KINDS: ClassVar[frozenset[str]] = frozenset({"task", "cluster", "node"})

    def __init__(self, store: MemoryStore, clock: Clock) -> None:
        super().__init__(store, clock)
        self.limit = DEFAULT_RETENTION
        self._dirty: set[SlotKey] = set()
        self._cleanup: set[str] = set()
        self._maybe_removable: set[str] = set()
        self._lost_nodes: set[str] = set()
        self._live = store.view()  # reads the store as it is whenever used

    async def init(self, view: ReadTx) -> None:
        # One moment's lists, looked at in steps (see ReconcileLoop).
        self.limit = retention_limit(view.cluster())
        services = {s.ID: s for s in view.services()}
        nodes = {n.ID: n for n in view.nodes()}
        tasks = view.list(Task)
        turns = BackgroundTurns()
        # A slot holding one task that is not done has no history to delete (only done tasks
        # are: ``history_to_delete``), so it is looked at only once it holds more: in a
        # settled cluster that is almost every slot, 100,000 of them at full size, each
        # looked up again in the first tick (issue 15).
        seen: set[SlotKey] = set()
        for first in range(0, len(tasks), STEP):
            for t in tasks[first : first + STEP]:
                node = nodes.get(t.NodeID) if t.NodeID else None
                if t.ServiceID and t.ServiceID not in services:
                    # Its service went while no leader was there to retire its tasks.
                    self._cleanup.add(t.ID)
                elif not t.ServiceID and t.Status.State >= TaskState.ORPHANED:
                    self._cleanup.add(t.ID)
                elif removable(t, node):
                    self._cleanup.add(t.ID)
                elif t.ServiceID:
                    key = slot_key(services[t.ServiceID], t)
                    done = is_done(t, abandoned(t, node))
                    if key in seen or done:
                        self._dirty.add(key)
                    seen.add(key)
            await turns.between()

    def handle(self, ev: Event) -> None:
        obj = ev.obj
        if isinstance(obj, Cluster):
            if ev.action != Action.REMOVE:
                self.limit = retention_limit(obj)
            return
        if isinstance(obj, Node):
            if ev.action == Action.REMOVE or node_lost(obj):
                self._lost_nodes.add(obj.ID)
            return
        if not isinstance(obj, Task):
            return
        if ev.action == Action.CREATE:
            self._note_slot(obj)
        elif ev.action == Action.UPDATE:
            if not obj.ServiceID and obj.Status.State >= TaskState.ORPHANED:
                self._cleanup.add(obj.ID)
            elif obj.DesiredState == TaskState.REMOVE:
                self._maybe_removable.add(obj.ID)

    def _note_slot(self, task: Task) -> None:
        """Look at ``task``'s slot at the next tick. Keyed as its service counts slots (by
        slot number, or by node for a global service), so a slot whose tasks ran on several
        nodes is looked at once. A task whose service is gone has no slot to look at."""
        service = self._live.get(Service, task.ServiceID) if task.ServiceID else None
        if service is not None:
            self._dirty.add(slot_key(service, task))

    async def tick(self) -> None:
        if not (self._dirty or self._cleanup or self._maybe_removable or self._lost_nodes):
            return
        try:
            doomed = await self._collect()
            fns = [partial(_delete, task_id=i) for i in sorted(doomed)]
            await write_batch(self.store, fns)
        except Exception:
            log.exception("task reaper: cleanup failed")

    async def _collect(self) -> set[str]:
        """The tasks to delete now. Reads the store again at every step (the loop runs in
        between): what is decided for a slot, from that slot's tasks, their nodes and its
        service read together, is what one read would decide at that moment; and it only ever
        deletes tasks that have stopped for good, or were retired on a node that is gone."""
        view = self.store.view()
        doomed = set(self._cleanup)
        self._cleanup = set()

        def node_of(t: Task) -> Node | None:
            return view.get(Node, t.NodeID) if t.NodeID else None

        for task_id in self._maybe_removable:
            t = view.get(Task, task_id)
            if t is not None and removable(t, node_of(t)):
                doomed.add(t.ID)
        self._maybe_removable = set()
        for node_id in self._lost_nodes:
            node = view.get(Node, node_id)
            if not node_lost(node):
                continue  # back already
            for t in view.tasks_on_node(node_id):
                if removable(t, node):
                    doomed.add(t.ID)
                elif t.ServiceID and abandoned(t, node):
                    self._note_slot(t)
        self._lost_nodes = set()

        def lost(t: Task) -> bool:
            return abandoned(t, node_of(t))

        # Taken out of self._dirty and dropped a step at a time: freeing 100,000 keys at once
        # held the loop 15 ms. Put back if something fails, to look at them again.
        dirty, self._dirty = list(self._dirty), set()
        still_dirty: set[SlotKey] = set()
        step: list[SlotKey] = []
        turns = BackgroundTurns()
        try:
            while dirty:
                step = dirty[-STEP:]
                del dirty[-STEP:]
                # Per service, within one step: (the service or None, tasks a slot keeps)
                services: dict[str, tuple[Service | None, int]] = {}
                for key in step:
                    known = services.get(key.service_id)
                    if known is None:
                        service = view.get(Service, key.service_id)
                        keep = slot_retention(self.limit, service) if service is not None else 0
                        known = services[key.service_id] = (service, keep)
                    service, keep = known
                    if service is None:
                        continue
                    if is_global(service):
                        on_node = view.tasks_on_node(key.node_id or "")
                        tasks = [t for t in on_node if t.ServiceID == key.service_id]
                    else:
                        tasks = view.find(Task, "slot", (key.service_id, key.slot))
                    delete, running = history_to_delete(tasks, keep, lost)
                    doomed.update(t.ID for t in delete)
                    # Two tasks still running in one slot (a replacement and the task it
                    # replaces): look again once one has stopped.
                    if running > 1:
                        still_dirty.add(key)
                step = []
                await turns.between()
        except BaseException:
            self._dirty.update(dirty, step, still_dirty)
            raise
        self._dirty.update(still_dirty)
        return doomed


def _delete(tx: Tx, task_id: str) -> None:
    if tx.get(Task, task_id) is not None:
        tx.delete(Task, task_id)
