"""The allocator's reconcile loop: a new task is given an address on each of its networks
(its service's ports and VIPs are allocated with the service itself), and moves on to
pending, where the scheduler finds it. Tasks are moved in batches: every task that became
new since the last pass, in a few transactions.

A task that cannot have its addresses yet (a network with no free address left) stays new,
saying why in its status, and is tried again whenever something changes that may free one.
"""

import datetime as dt
from collections.abc import Callable

from shoal.api.objects import Task
from shoal.api.types import TaskState
from shoal.clock import BackgroundTurns, Clock
from shoal.manager.allocator.networks import attach_task
from shoal.store import Action, Event, MemoryStore, Tx

PENDING_MESSAGE = "pending task scheduling"
STEP = 500  # tasks a new leader's first read looks at between two looks at the clock


class Allocator:
    def __init__(self, store: MemoryStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        # Tasks that could not have their addresses: tried again at the next change.
        self._waiting: dict[str, None] = {}

    async def run(self) -> None:
        view, sub = self.store.view_and_watch(kinds={"task", "service", "network"})
        try:
            await self._commit(await self._new_tasks(view.list(Task)))
            while True:
                try:
                    ev = await sub.get()
                except StopAsyncIteration:
                    return  # the store closed
                ready = dict(self._waiting)
                self._collect(ev, ready)
                while (more := sub.get_nowait()) is not None:
                    self._collect(more, ready)
                await self._commit(ready)
        finally:
            sub.close()

    @staticmethod
    async def _new_tasks(tasks: list[Task]) -> dict[str, None]:
        """The IDs of the new ones of ``tasks`` (one moment's list, whose objects the store
        never changes), STEP at a time, letting the event loop run every LOOP_SLICE: a new
        leader reads every task of the store here (0.1 s at 100,000 tasks, issue 15)."""
        # dicts, not sets: tasks move on in the order they were made
        ready: dict[str, None] = {}
        turns = BackgroundTurns()
        for first in range(0, len(tasks), STEP):
            for t in tasks[first : first + STEP]:
                if t.Status.State == TaskState.NEW:
                    ready[t.ID] = None
            await turns.between()
        return ready

    def _collect(self, ev: Event, ready: dict[str, None]) -> None:
        if ev.is_commit or ev.obj is None or not isinstance(ev.obj, Task):
            return
        if ev.action is Action.REMOVE:
            ready.pop(ev.obj.ID, None)
            self._waiting.pop(ev.obj.ID, None)
        elif ev.obj.Status.State == TaskState.NEW:
            ready[ev.obj.ID] = None

    async def _commit(self, task_ids: dict[str, None]) -> None:
        if task_ids:
            now = self.clock.now()
            await self.store.batch(self._to_pending(i, now) for i in task_ids)

    def _to_pending(self, task_id: str, now: dt.datetime) -> Callable[[Tx], None]:
        def fn(tx: Tx) -> None:
            task = tx.get(Task, task_id)
            if task is None or task.Status.State != TaskState.NEW:
                self._waiting.pop(task_id, None)
                return
            # A shallow copy: the parts shared with the stored task are never modified.
            changed = task.model_copy()
            why = attach_task(tx, changed) if task.Spec.Networks else ""
            if why:
                self._waiting[task_id] = None
                if task.Status.Message != why:
                    status = task.Status.model_copy(update={"Message": why, "Timestamp": now})
                    tx.update(task.model_copy(update={"Status": status}))
                return
            self._waiting.pop(task_id, None)
            changed.Status = task.Status.model_copy(
                update={"State": TaskState.PENDING, "Message": PENDING_MESSAGE, "Timestamp": now}
            )
            tx.update(changed)

        return fn
