"""The allocator's reconcile loop: a new task has what it needs (its service's ports are
allocated with the service itself), so it moves on to pending, where the scheduler finds it.
Tasks are moved in batches: every task that became new since the last pass, in a few
transactions."""

import datetime as dt
from collections.abc import Callable

from shoal.api.objects import Task
from shoal.api.types import TaskState
from shoal.clock import Clock
from shoal.store import Action, Event, MemoryStore, Tx

PENDING_MESSAGE = "pending task scheduling"


class Allocator:
    def __init__(self, store: MemoryStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def run(self) -> None:
        view, sub = self.store.view_and_watch(kinds={"task"})
        try:
            # dicts, not sets: tasks move on in the order they were made
            ready = {t.ID: None for t in view.list(Task) if t.Status.State == TaskState.NEW}
            await self._commit(ready)
            while True:
                try:
                    ev = await sub.get()
                except StopAsyncIteration:
                    return  # the store closed
                ready = {}
                self._collect(ev, ready)
                while (more := sub.get_nowait()) is not None:
                    self._collect(more, ready)
                await self._commit(ready)
        finally:
            sub.close()

    @staticmethod
    def _collect(ev: Event, ready: dict[str, None]) -> None:
        if ev.is_commit or ev.obj is None:
            return
        if ev.action is Action.REMOVE:
            ready.pop(ev.obj.ID, None)
        elif isinstance(ev.obj, Task) and ev.obj.Status.State == TaskState.NEW:
            ready[ev.obj.ID] = None

    async def _commit(self, task_ids: dict[str, None]) -> None:
        if task_ids:
            now = self.clock.now()
            await self.store.batch(self._to_pending(i, now) for i in task_ids)

    @staticmethod
    def _to_pending(task_id: str, now: dt.datetime) -> Callable[[Tx], None]:
        def fn(tx: Tx) -> None:
            task = tx.get(Task, task_id)
            if task is None or task.Status.State != TaskState.NEW:
                return
            status = task.Status.model_copy(
                update={"State": TaskState.PENDING, "Message": PENDING_MESSAGE, "Timestamp": now}
            )
            # A shallow copy: the parts shared with the stored task are never modified.
            tx.update(task.model_copy(update={"Status": status}))

        return fn
