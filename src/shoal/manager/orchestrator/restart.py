"""The restart supervisor: replaces stopped tasks under their restart policy and starts the
replacements once their restart delay has passed and the task they replace has stopped.

Orchestrators call ``restart`` inside a store transaction. The replacement is created with
DesiredState ``ready`` (the agent may prepare it, not start it); a delayed start then moves it
to ``running`` once (a) the policy's Delay has passed and (b) the old task has stopped, its node
is down or gone, or ``old_task_timeout`` has passed. A replacement with neither to wait for is
created ``running``. ``run()`` drives those delayed starts and
must be running for them to finish. On a new leader, ``run()`` first rebuilds the restart
history and the delayed starts from the store, letting the event loop run meanwhile; whatever
asks the supervisor for a decision waits for ``recovered()`` first.
"""

import asyncio
import datetime as dt
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from shoal.api.objects import Node, Service, Task
from shoal.api.types import NodeAvailability, NodeState, TaskState
from shoal.clock import BackgroundTurns, Clock
from shoal.manager.orchestrator.restart_policy import (
    RestartHistory,
    limits_attempts,
    restart_policy,
    should_restart,
)
from shoal.manager.orchestrator.task import (
    SlotKey,
    is_global,
    new_task,
    newest,
    slot_key,
    spec_version_index,
)
from shoal.manager.orchestrator.update_status import rollback_in_progress
from shoal.manager.orchestrator.waiting import first_of, write
from shoal.store import MemoryStore, ReadTx, Subscription, Tx

log = logging.getLogger(__name__)

OLD_TASK_TIMEOUT = 60.0  # seconds a replacement waits at most for the task it replaces
STEP = 500  # tasks (or slots) a new leader's recovery looks at between two looks at the clock


@dataclass(frozen=True)
class RestartPlan:
    """How to start a replacement: after ``delay`` seconds, and (if ``wait_stop``) once the
    old task has stopped."""

    delay: float
    wait_stop: bool


def plan_restart(old: Task, node: Node | None) -> RestartPlan:
    """Swarm's rules: no delay when the old task's node is drained (the user asked for the
    move); no waiting for the old task when it has already stopped or its node is down.

    And one of shoal's own: no delay either for a task lost with its node (still running, or
    on its way to, when the node went down). The restart delay spaces out the restarts of a
    task that keeps failing; a task whose machine died did not fail, and making it wait 5 s
    more once its node is found down (as Swarm does) only keeps its replica away longer. A
    task that stopped by itself before its node went down still waits."""
    policy = restart_policy(old.Spec)
    drained = node is not None and node.Spec.Availability == NodeAvailability.DRAIN
    node_down = node is not None and node.Status.State == NodeState.DOWN
    still_running = old.Status.State <= TaskState.RUNNING
    lost = node_down and still_running
    delay = 0.0 if drained or lost else policy.delay_seconds
    wait_stop = still_running and not node_down
    return RestartPlan(delay, wait_stop)


@dataclass(eq=False)
class _DelayedStart:
    new_id: str
    old_id: str | None
    old_node_id: str | None
    delay: float
    wait_for_old: bool
    started: float  # clock.monotonic() when scheduled
    done: asyncio.Future
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None
    # Another restart of the task being started was asked for meanwhile: do it afterwards.
    restart_after: bool = False


class RestartSupervisor:
    def __init__(
        self, store: MemoryStore, clock: Clock, *, old_task_timeout: float = OLD_TASK_TIMEOUT
    ) -> None:
        self.store = store
        self.clock = clock
        self.old_task_timeout = old_task_timeout
        self.history = RestartHistory()
        self._pending: dict[str, _DelayedStart] = {}
        self._by_old_task: dict[str, set[_DelayedStart]] = {}
        self._by_old_node: dict[str, set[_DelayedStart]] = {}
        self._background: set[asyncio.Task] = set()
        self._sub: Subscription | None = None
        self._recovered = asyncio.Event()

    async def recovered(self) -> None:
        """Returns once ``run`` has rebuilt what a new leader needs before deciding anything
        (the restart history, the pending starts). The restart history decides whether a task
        is restarted (MaxAttempts) and a pending start whether a restart waits for the delay:
        the orchestrators wait for this before their first decision."""
        await self._recovered.wait()

    # --- decisions -------------------------------------------------------------------------

    def should_restart(self, service: Service, task: Task) -> bool:
        return should_restart(task, self.history.get(slot_key(service, task)))

    def updatable_tasks_in_slot(self, slot: list[Task], service: Service) -> list[Task]:
        """The tasks of a slot the orchestrator keeps counting: those meant to run; or, if
        none is, the newest one when it is not to be restarted (a slot whose task completed
        under ``--restart-condition none`` is still a replica; an update may still replace
        it). Empty for a slot to be dropped. During a rollback such slots are dropped, so
        the rollback converges."""
        runnable = [t for t in slot if t.DesiredState <= TaskState.RUNNING]
        if runnable or not slot:
            return runnable
        if rollback_in_progress(service):
            return []
        last = newest(slot)
        assert last is not None
        if not self.should_restart(service, last):
            return [last]
        return []

    # --- restarting ------------------------------------------------------------------------

    def restart(self, tx: Tx, service: Service, task: Task) -> Task | None:
        """Shut ``task`` down and, if its policy says so, create its replacement (desired
        ``ready``) and schedule its start. Returns the replacement."""
        current = tx.get(Task, task.ID)
        if current is None or current.DesiredState > TaskState.RUNNING:
            return None
        pending = self._pending.get(current.ID)
        if pending is not None:
            # The task is itself a replacement still in its restart delay: restart it once
            # that delay is over, so a task failing at once cannot restart in a tight loop.
            pending.restart_after = True
            return None
        tx.update(current.model_copy(update={"DesiredState": TaskState.SHUTDOWN}))
        if not self.should_restart(service, current):
            return None
        now = self.clock.now()
        node = tx.get(Node, current.NodeID) if current.NodeID else None
        plan = plan_restart(current, node)
        # With nothing to wait for (a task lost with its node, most often) the replacement is
        # made to run in this same write. A start of its own was one more write per task: the
        # 10,000 replacements of 100 lost nodes were 10,000 more store updates (issue 15).
        waits = plan.delay > 0 or plan.wait_stop
        desired = TaskState.READY if waits else TaskState.RUNNING
        if is_global(service):
            replacement = new_task(service, now=now, node_id=current.NodeID, desired=desired)
        else:
            replacement = new_task(service, now=now, slot=current.Slot, desired=desired)
        tx.create(replacement)
        self.history.record(slot_key(service, replacement), replacement, now)
        if waits:
            self.delay_start(current, replacement.ID, plan.delay, plan.wait_stop)
        return replacement

    def delay_start(
        self, old: Task | None, new_task_id: str, delay: float, wait_stop: bool
    ) -> asyncio.Future:
        """Move ``new_task_id`` to desired ``running`` after ``delay`` seconds and, if
        ``wait_stop``, once ``old`` has stopped. Replaces any delayed start already scheduled
        for it. The returned future is done when the start was written (or abandoned)."""
        self._ensure_watch()
        previous = self._pending.get(new_task_id)
        if previous is not None:
            self._cancel_entry(previous)
        loop = asyncio.get_running_loop()
        entry = _DelayedStart(
            new_id=new_task_id,
            old_id=old.ID if old is not None else None,
            old_node_id=old.NodeID if old is not None else None,
            delay=max(0.0, delay),
            wait_for_old=wait_stop and old is not None and old.Status.State <= TaskState.RUNNING,
            started=self.clock.monotonic(),
            done=loop.create_future(),
        )
        self._pending[new_task_id] = entry
        if entry.wait_for_old:
            assert entry.old_id is not None
            self._by_old_task.setdefault(entry.old_id, set()).add(entry)
            if entry.old_node_id:
                self._by_old_node.setdefault(entry.old_node_id, set()).add(entry)
        entry.task = loop.create_task(self._delayed_start(entry))
        return entry.done

    @staticmethod
    def start_now(tx: Tx, task_id: str) -> None:
        """Let a replacement start: desired ``ready`` -> ``running``."""
        t = tx.get(Task, task_id)
        if t is None or t.DesiredState >= TaskState.RUNNING:
            return
        tx.update(t.model_copy(update={"DesiredState": TaskState.RUNNING}))

    def cancel(self, task_id: str) -> None:
        """Abandon the delayed start of ``task_id`` (it was deleted, say)."""
        entry = self._pending.get(task_id)
        if entry is not None:
            self._cancel_entry(entry)

    def cancel_all(self) -> None:
        for entry in list(self._pending.values()):
            self._cancel_entry(entry)
        for t in list(self._background):
            t.cancel()

    def clear_service_history(self, service_id: str) -> None:
        self.history.clear_service(service_id)

    def pending_start(self, task_id: str) -> asyncio.Future | None:
        """The future of the delayed start scheduled for ``task_id``, if there is one."""
        entry = self._pending.get(task_id)
        return entry.done if entry is not None else None

    def pending(self) -> set[str]:
        """IDs of tasks waiting for their delayed start."""
        return set(self._pending)

    # --- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        sub = self._ensure_watch()
        try:
            await self._recover(self.store.view())
            self._recovered.set()
            async for ev in sub:
                if ev.is_commit or ev.obj is None:
                    continue
                if ev.kind == "task":
                    waiting = self._by_old_task.get(ev.obj.ID, ())
                elif ev.kind == "node":
                    waiting = self._by_old_node.get(ev.obj.ID, ())
                else:
                    continue
                for entry in waiting:
                    entry.changed.set()
        finally:
            self._sub = None
            sub.close()
            self.cancel_all()

    def _ensure_watch(self) -> Subscription:
        # Subscribed as soon as a delayed start may wait on the store, so no event after it
        # is missed even if run() has not started yet.
        if self._sub is None:
            self._sub = self.store.watch(kinds={"task", "node"})
        return self._sub

    async def _recover(self, view: ReadTx) -> None:
        """What a new leader finds: replacements left in desired ``ready`` are started once
        what is left of their delay has passed; the restart history of each slot is rebuilt
        from the tasks made for the current spec.

        Done in steps, letting the event loop run every ``LOOP_SLICE``: at 100,000 tasks it
        held a new leader's loop for 0.4 s (issue 15), which raft's heartbeats waited behind.
        The steps read one moment's lists of services and tasks, whose objects the store never
        changes in place, so the result is that of one read at the start; and no decision
        consults it before it is whole (``recovered``)."""
        now = self.clock.now()
        since = self.clock.monotonic()
        services = {s.ID: s for s in view.services()}
        tasks = view.list(Task)
        turns = BackgroundTurns()
        # Services with a task whose policy limits attempts: only their slots have a history
        # (``RestartHistory.record`` ignores the others).
        limited: set[str] = set()
        for first in range(0, len(tasks), STEP):
            for t in tasks[first : first + STEP]:
                if t.ServiceID not in services:
                    continue
                if limits_attempts(t.Spec):
                    limited.add(t.ServiceID)
                if t.DesiredState != TaskState.READY or t.Status.State > TaskState.COMPLETE:
                    continue
                if t.ID in self._pending:
                    continue
                delay = restart_policy(t.Spec).delay_seconds
                left = (t.Status.Timestamp + dt.timedelta(seconds=delay) - now).total_seconds()
                # Counted from the start of the recovery, as if scheduled then.
                spent = self.clock.monotonic() - since
                self.delay_start(None, t.ID, max(0.0, min(delay, left)) - spent, False)
            await turns.between()
        if not limited:
            return
        by_slot: dict[SlotKey, list[Task]] = {}
        for first in range(0, len(tasks), STEP):
            for t in tasks[first : first + STEP]:
                if t.ServiceID in limited:
                    by_slot.setdefault(slot_key(services[t.ServiceID], t), []).append(t)
            await turns.between()
        slots = [(key, slot) for key, slot in by_slot.items() if len(slot) > 1]
        for first in range(0, len(slots), STEP):
            for key, slot in slots[first : first + STEP]:
                if key not in self.history:
                    self._rebuild_slot(key, slot)
            await turns.between()

    def _rebuild_slot(self, key: SlotKey, tasks: list[Task]) -> None:
        """Count as restarts all the tasks made for the slot's latest spec but the first."""
        latest = max((spec_version_index(t.SpecVersion) or 0) for t in tasks)
        current = sorted(
            (t for t in tasks if (spec_version_index(t.SpecVersion) or 0) == latest),
            key=lambda t: (t.CreatedAt, t.ID),
        )
        for t in current[1:]:
            self.history.record(key, t, t.CreatedAt)

    # --- delayed starts --------------------------------------------------------------------

    async def _delayed_start(self, entry: _DelayedStart) -> None:
        cancelled = False
        try:
            # Counted from when the start was scheduled, not from when this coroutine runs.
            left = entry.started + entry.delay - self.clock.monotonic()
            if left > 0:
                await self.clock.sleep(left)
            if entry.wait_for_old:
                await self._until_old_task_stopped(entry)
            # Starts that come due together are committed together by the store (its group
            # commit): written one by one, the 400 replacements of 20 lost nodes were 400
            # proposals in turn (issue 15).
            await write(self.store, partial(self._start_if_pending, entry=entry))
        except asyncio.CancelledError:
            cancelled = True
            raise
        except Exception:
            log.exception("starting task %s failed", entry.new_id)
        finally:
            self._forget(entry)
            if not entry.done.done():
                entry.done.set_result(None)
            if entry.restart_after and not cancelled:
                self._spawn(self._restart_later(entry.new_id))

    def _start_if_pending(self, tx: Tx, entry: _DelayedStart) -> None:
        # Not if the start was cancelled or scheduled again while it waited for the writer.
        if self._pending.get(entry.new_id) is entry:
            self.start_now(tx, entry.new_id)

    async def _until_old_task_stopped(self, entry: _DelayedStart) -> None:
        deadline = entry.started + self.old_task_timeout
        while not self._old_task_stopped(entry):
            left = deadline - self.clock.monotonic()
            if left <= 0:
                return
            entry.changed.clear()
            await first_of(entry.changed.wait(), self.clock.sleep(left))

    def _old_task_stopped(self, entry: _DelayedStart) -> bool:
        view = self.store.view()
        assert entry.old_id is not None
        old = view.get(Task, entry.old_id)
        if old is None or old.Status.State > TaskState.RUNNING:
            return True
        if not old.NodeID or old.Status.State < TaskState.ASSIGNED:
            return True  # never given to a node: nothing runs that could be stopped
        if old.NodeID:
            node = view.get(Node, old.NodeID)
            if node is None or node.Status.State == NodeState.DOWN:
                return True
        return False

    async def _restart_later(self, task_id: str) -> None:
        def fn(tx: Tx) -> None:
            t = tx.get(Task, task_id)
            if t is None or t.DesiredState > TaskState.RUNNING:
                return
            service = tx.get(Service, t.ServiceID)
            if service is None:
                return
            self.restart(tx, service, t)

        try:
            await write(self.store, fn)
        except Exception:
            log.exception("restarting task %s after its delay failed", task_id)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        t = asyncio.get_running_loop().create_task(coro)
        self._background.add(t)
        t.add_done_callback(self._background.discard)

    def _cancel_entry(self, entry: _DelayedStart) -> None:
        self._forget(entry)
        if entry.task is not None:
            entry.task.cancel()
        if not entry.done.done():
            entry.done.set_result(None)

    def _forget(self, entry: _DelayedStart) -> None:
        if self._pending.get(entry.new_id) is entry:
            del self._pending[entry.new_id]
        for index, key in (
            (self._by_old_task, entry.old_id),
            (self._by_old_node, entry.old_node_id),
        ):
            if key is None:
                continue
            bucket = index.get(key)
            if bucket is not None:
                bucket.discard(entry)
                if not bucket:
                    del index[key]
