"""The scheduler's reconcile loop: keeps the node set current from store events, and assigns
pending tasks to nodes in batches.

Each pass over the event queue handles every event already queued before deciding, so a burst
of new tasks is placed together and written in a few large transactions. A task no node can
take waits, with its reason in Status.Err, until something that could change the answer
happens: a node joins or changes, or a task leaves a node and frees its place.
"""

import enum
import logging
from collections.abc import Callable

from shoal import metrics
from shoal.api.objects import Node, Task
from shoal.api.types import NodeAvailability, NodeState, TaskState
from shoal.clock import BackgroundTurns, Clock
from shoal.manager.scheduler.nodeinfo import is_active
from shoal.manager.scheduler.nodeset import NodeSet, occupies_node
from shoal.manager.scheduler.pipeline import Pipeline
from shoal.manager.scheduler.planner import Plan, Planner, schedulable
from shoal.store import Action, Event, MemoryStore, ReadTx, Tx

log = logging.getLogger(__name__)

STEP = 500  # tasks a new leader's first read looks at between two looks at the clock


class _Outcome(enum.Enum):
    WRITTEN = "written"
    GONE = "gone"  # the task moved on (deleted, assigned, no longer wanted): forget the plan
    RETRY = "retry"  # the node changed under the decision: decide again


def _scheduling_view(node: Node) -> tuple:
    """The parts of a node the filters look at; other changes need no new decisions."""
    return (node.Status.State, node.Spec, node.Description, node.Role)


class Scheduler:
    def __init__(self, store: MemoryStore, clock: Clock, pipeline: Pipeline | None = None) -> None:
        self.store = store
        self.clock = clock
        self.planner = Planner(pipeline)
        self.nodes = NodeSet()
        # Tasks to decide on at the next pass, and tasks that fit nowhere last time.
        self._queue: dict[str, Task] = {}
        self._waiting: dict[str, Task] = {}
        self._retry_waiting = False

    async def run(self) -> None:
        view, sub = self.store.view_and_watch(kinds={"node", "task"})
        try:
            await self._load(view)
            await self._pass()
            while True:
                try:
                    ev = await sub.get()
                except StopAsyncIteration:
                    return  # the store closed
                self._handle(ev)
                while (more := sub.get_nowait()) is not None:
                    self._handle(more)
                if self._queue or self._retry_waiting:
                    await self._pass()
        finally:
            sub.close()

    # --- state from the store ---------------------------------------------------------------

    async def _load(self, view: ReadTx) -> None:
        """``NodeSet.build(nodes, tasks)`` and the queue of tasks to place, from one moment's
        lists of nodes and tasks, looked at STEP tasks at a time, letting the event loop run
        every LOOP_SLICE: at 100,000 tasks this held a new leader's loop for 0.5 s in one go
        (issue 15). The store replaces objects and never changes them in place, so the result
        is that of one read; every change after it comes as an event, handled afterwards."""
        tasks = view.list(Task)
        self.nodes = NodeSet.build(view.nodes(), ())
        self._queue = {}
        self._waiting = {}
        self._retry_waiting = False
        turns = BackgroundTurns()
        for first in range(0, len(tasks), STEP):
            for t in tasks[first : first + STEP]:
                if occupies_node(t):
                    info = self.nodes.get(t.NodeID)
                    if info is not None:
                        info.add_task(t)
                if schedulable(t):
                    self._queue[t.ID] = t
            await turns.between()

    def _handle(self, ev: Event) -> None:
        if ev.is_commit:
            return
        if ev.kind == "task":
            self._on_task(ev)
        elif ev.kind == "node":
            self._on_node(ev)

    def _forget(self, task_id: str, node_id: str | None) -> None:
        self._queue.pop(task_id, None)
        self._waiting.pop(task_id, None)
        info = self.nodes.get(node_id)
        if info is not None and info.remove_task(task_id) is not None:
            # Its resources, ports and place are free: waiting tasks may fit now.
            self._retry_waiting = True

    def _on_task(self, ev: Event) -> None:
        task = ev.obj
        assert isinstance(task, Task)
        if ev.action is Action.REMOVE or task.Status.State > TaskState.RUNNING:
            self._forget(task.ID, task.NodeID)
            return
        if occupies_node(task):
            self._queue.pop(task.ID, None)
            self._waiting.pop(task.ID, None)
            info = self.nodes.get(task.NodeID)
            if info is not None and info.add_task(task) and not is_active(task):
                # No longer counted on its node (being shut down): a per-node limit may allow
                # a waiting task there now.
                self._retry_waiting = True
            return
        if schedulable(task):
            if task.ID in self._waiting:
                # Still waiting (often our own Err update): keep it there, with its newest
                # version, until something changes.
                self._waiting[task.ID] = task
            else:
                self._queue[task.ID] = task
            return
        # New (not allocated yet), or pending but no longer meant to run.
        self._queue.pop(task.ID, None)
        self._waiting.pop(task.ID, None)

    def _on_node(self, ev: Event) -> None:
        node = ev.obj
        assert isinstance(node, Node)
        if ev.action is Action.REMOVE:
            self.nodes.remove(node.ID)
            return
        old = ev.old
        known = node.ID in self.nodes
        info = self.nodes.add_or_update(node)
        if not known:
            # Tasks may name a node before the scheduler hears of it (a node removed and
            # joining again); count them now. Their own later events change nothing twice.
            for task in self.store.view().tasks_on_node(node.ID):
                if occupies_node(task):
                    info.add_task(task)
        if not isinstance(old, Node) or _scheduling_view(old) != _scheduling_view(node):
            self._retry_waiting = True

    # --- deciding and writing ---------------------------------------------------------------

    async def _pass(self) -> None:
        if self._retry_waiting:
            self._queue.update(self._waiting)
            self._waiting.clear()
            self._retry_waiting = False
        if not self._queue:
            return
        started = metrics.stopwatch()
        tasks = list(self._queue.values())
        self._queue.clear()
        result = self.planner.plan(self.nodes, tasks, self.clock.now())
        for task in result.unplaced:
            self._waiting[task.ID] = task
        await self._commit(result, {t.ID: t for t in tasks})
        metrics.SCHEDULER_PASS_LATENCY.observe(metrics.since(started))
        metrics.SCHEDULER_DECISIONS.labels("assigned").inc(len(result.assigned))
        metrics.SCHEDULER_DECISIONS.labels("unplaced").inc(len(result.unplaced))

    async def _commit(self, result: Plan, originals: dict[str, Task]) -> None:
        writes = result.writes
        if not writes:
            return
        outcomes: dict[str, _Outcome] = {}
        try:
            await self.store.batch(self._write(t, outcomes) for t in writes)
        except Exception:
            # Nothing is known to be written: undo every placement, and decide again.
            log.exception("scheduler: writing %d decisions failed", len(writes))
            outcomes = {t.ID: _Outcome.RETRY for t in writes}
            self._retry_waiting = True
        for task in result.assigned:
            outcome = outcomes.get(task.ID, _Outcome.RETRY)
            if outcome is _Outcome.WRITTEN:
                continue
            info = self.nodes.get(task.NodeID)
            if info is not None:
                info.remove_task(task.ID)
            if outcome is _Outcome.RETRY:
                self._waiting[task.ID] = originals[task.ID]
                self._retry_waiting = True

    @staticmethod
    def _write(planned: Task, outcomes: dict[str, _Outcome]) -> Callable[[Tx], None]:
        assigning = planned.Status.State == TaskState.ASSIGNED
        task_id = planned.ID

        def fn(tx: Tx) -> None:
            current = tx.get(Task, task_id)
            if current is None or not schedulable(current):
                outcomes[task_id] = _Outcome.GONE
                return
            if assigning:
                node = tx.get(Node, planned.NodeID or "")
                if (
                    node is None
                    or node.Status.State != NodeState.READY
                    or node.Spec.Availability != NodeAvailability.ACTIVE
                ):
                    outcomes[task_id] = _Outcome.RETRY
                    return
                if current.NodeID and current.NodeID != planned.NodeID:
                    outcomes[task_id] = _Outcome.GONE
                    return
            elif current.Status.Err == planned.Status.Err:
                outcomes[task_id] = _Outcome.GONE
                return
            if current.Version.Index == planned.Version.Index:
                # Decided on the version still stored: the planned copy is the new version.
                tx.update(planned)
            elif assigning:
                tx.update(
                    current.model_copy(update={"NodeID": planned.NodeID, "Status": planned.Status})
                )
            else:
                tx.update(current.model_copy(update={"Status": planned.Status}))
            outcomes[task_id] = _Outcome.WRITTEN

        return fn
