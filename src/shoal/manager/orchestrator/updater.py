"""The rolling updater: replaces the tasks of a service whose task spec changed, slot by slot
(node by node for global services), ``parallelism`` at a time, waiting for each new task to
run and then ``delay``; watches new tasks for failures for ``monitor``; acts on too many
failures with the failure action; keeps Service.UpdateStatus. Same rules as swarmkit's
updater, except that a task the orchestrator shut down on purpose (its node drained, say) is
not counted as a failure, and waiting for a new task ends when it is shut down or deleted, so
such a task never stalls the update.

The orchestrators hand each service's slots to ``UpdateSupervisor.update`` on every change;
an update already working towards the same spec carries on, any other one is cancelled.
"""

import asyncio
import logging
from collections.abc import Callable
from functools import partial

from shoal.api.objects import Node, Service, Task
from shoal.api.types import FailureAction, TaskState, UpdateState
from shoal.clock import Clock
from shoal.manager.orchestrator.eligibility import NodeFit, node_fit
from shoal.manager.orchestrator.restart import RestartSupervisor
from shoal.manager.orchestrator.task import (
    is_global,
    is_task_dirty,
    made_for_current_spec,
    new_task,
)
from shoal.manager.orchestrator.update_config import UpdateSettings, update_settings
from shoal.manager.orchestrator.update_status import (
    FailureResponse,
    failure_message,
    failure_response,
    mark_completed,
    mark_paused,
    mark_rolling_back,
    mark_started,
    too_many_failures,
    update_paused,
)
from shoal.manager.orchestrator.waiting import first_of, write
from shoal.store import MemoryStore, ReadTx, Subscription, Tx
from shoal.store.proposal import Action

log = logging.getLogger(__name__)

Slot = list[Task]


class _ServiceGone(Exception):
    pass


def shut_down(tx: Tx, tasks: list[Task]) -> Task | None:
    """Set desired ``shutdown`` on those of ``tasks`` still meant to run; return one of them."""
    removed = None
    for original in tasks:
        if original.DesiredState > TaskState.RUNNING:
            continue
        t = tx.get(Task, original.ID)
        if t is None or t.DesiredState > TaskState.RUNNING:
            continue
        tx.update(t.model_copy(update={"DesiredState": TaskState.SHUTDOWN}))
        removed = t
    return removed


class Updater:
    """One update of one service towards ``service.Spec``."""

    def __init__(
        self, store: MemoryStore, clock: Clock, restarts: RestartSupervisor, service: Service
    ) -> None:
        self.store = store
        self.clock = clock
        self.restarts = restarts
        self.service = service.clone()
        # Tasks this update created -> monotonic time each reached running (None: not yet).
        self.updated: dict[str, float | None] = {}
        self.failures: list[str] = []
        self._halted = asyncio.Event()
        self._monitor_window = 0.0

    @property
    def halted(self) -> bool:
        """Paused or rolled back: no more slots will be started."""
        return self._halted.is_set()

    # --- dirtiness -------------------------------------------------------------------------

    def is_task_dirty(self, task: Task) -> bool:
        # Every task of the service is asked on every reconciliation (of every service, on a
        # new leader): most are up to date, which needs no Node look-up.
        if made_for_current_spec(self.service, task):
            return False
        node = self.store.view().get(Node, task.NodeID) if task.NodeID else None
        return is_task_dirty(self.service, task, node)

    def is_slot_dirty(self, slot: Slot) -> bool:
        return len(slot) > 1 or (len(slot) == 1 and self.is_task_dirty(slot[0]))

    # --- the update ------------------------------------------------------------------------

    async def run(self, slots: list[Slot]) -> None:
        service = self.service
        if update_paused(service):
            return
        dirty = [s for s in slots if s and self.is_slot_dirty(s)]
        state = service.UpdateStatus.State if service.UpdateStatus is not None else None
        if not dirty:
            if state in (UpdateState.UPDATING, UpdateState.ROLLBACK_STARTED):
                await self._write_status(lambda s: mark_completed(s, self.clock.now()))
            return
        if service.UpdateStatus is None:
            await self._write_status(lambda s: mark_started(s, self.clock.now()))
        rolling_back = state == UpdateState.ROLLBACK_STARTED
        settings = update_settings(service.Spec, rollback=rolling_back)
        self._monitor_window = settings.monitor_seconds

        watcher = None
        sub: Subscription | None = None
        if settings.failure_action != FailureAction.CONTINUE:
            sub = self.store.watch(
                kinds={"task"},
                filt=lambda ev: isinstance(ev.obj, Task) and ev.obj.ServiceID == self.service.ID,
            )
            watcher = asyncio.create_task(
                self._watch_failures(sub, settings, len(dirty), rolling_back)
            )
        workers: set[asyncio.Task] = set()
        try:
            free = asyncio.Semaphore(settings.workers(len(dirty)))
            for slot in dirty:
                if await first_of(free.acquire(), self._halted.wait()) == 1:
                    break
                if self._halted.is_set():
                    free.release()
                    break
                w = asyncio.create_task(self._update_slot(slot, settings))
                workers.add(w)
                w.add_done_callback(lambda _: free.release())
            if workers:
                await asyncio.gather(*workers)
            if self._halted.is_set():
                return
            self._monitor_window = settings.final_monitor_seconds()
            await first_of(self.clock.sleep(settings.final_monitor_seconds()), self._halted.wait())
            if self._halted.is_set():
                return
            await self._write_status(lambda s: mark_completed(s, self.clock.now()))
        finally:
            for w in workers:
                w.cancel()
            if watcher is not None:
                watcher.cancel()
            if sub is not None:
                sub.close()

    async def _watch_failures(
        self, sub: Subscription, settings: UpdateSettings, dirty_slots: int, rolling_back: bool
    ) -> None:
        seen: set[str] = set()
        async for ev in sub:
            if ev.is_commit or ev.action != Action.UPDATE:
                continue
            t = ev.obj
            if not isinstance(t, Task) or t.ID in seen or t.ID not in self.updated:
                continue
            # A task shut down on purpose (drain, scale down) has not failed.
            if t.Status.State <= TaskState.RUNNING or t.DesiredState > TaskState.RUNNING:
                continue
            started = self.updated[t.ID]
            if started is not None and self.clock.monotonic() - started > self._monitor_window:
                continue
            seen.add(t.ID)
            self.failures.append(t.ID)
            if not too_many_failures(len(self.failures), dirty_slots, settings.max_failure_ratio):
                continue
            response = failure_response(settings.failure_action, rolling_back=rolling_back)
            if response == FailureResponse.NONE:
                continue
            message = failure_message(response, t.ID, rolling_back=rolling_back)
            self._halted.set()
            if response == FailureResponse.ROLLBACK:
                await self._write_status(partial(mark_rolling_back, message=message))
            else:
                await self._write_status(partial(mark_paused, message=message))
            return

    def _current(self, slot: Slot, reader: ReadTx | None = None) -> Slot:
        """The slot's tasks as they are now: the slots were read when the update began, and
        the orchestrators may have replaced a task since (its node drained, say, or its task
        failed and was restarted), or given the slot up (empty then)."""
        view = reader if reader is not None else self.store.view()
        first = slot[0]
        if is_global(self.service):
            node = view.get(Node, first.NodeID) if first.NodeID else None
            if node_fit(self.service, node) != NodeFit.HOST:
                return []
            tasks = view.find(Task, "service_node", (self.service.ID, first.NodeID))
        else:
            tasks = view.find(Task, "slot", (self.service.ID, first.Slot))
        live = self.restarts.updatable_tasks_in_slot(tasks, self.service)
        return sorted(live, key=lambda t: (t.CreatedAt, t.ID))

    def _up_to_date(self, slot: Slot) -> Task | None:
        """The slot's task already on the new spec that the update keeps: the one meant to
        run, else one about to start (a restart's replacement, say)."""
        clean = None
        for t in slot:
            if self.is_task_dirty(t):
                continue
            if t.DesiredState == TaskState.RUNNING:
                return t
            if t.DesiredState < TaskState.RUNNING:
                clean = t
        return clean

    async def _update_slot(self, slot: Slot, settings: UpdateSettings) -> None:
        slot = self._current(slot)
        if not slot or not self.is_slot_dirty(slot):
            return  # given up, or brought up to date, meanwhile
        try:
            existing = self._up_to_date(slot)
            if existing is not None:
                await self._use_existing(slot, existing)
            else:
                node_id = slot[0].NodeID if is_global(self.service) else None
                slot_no = None if is_global(self.service) else slot[0].Slot
                fresh = new_task(
                    self.service,
                    now=self.clock.now(),
                    slot=slot_no,
                    node_id=node_id,
                    desired=TaskState.READY,
                )
                await self._replace(slot, fresh, settings.start_first)
        except _ServiceGone:
            self._halted.set()
            return
        if settings.delay and not self._halted.is_set():
            await first_of(self.clock.sleep(settings.delay_seconds), self._halted.wait())

    async def _replace(self, slot: Slot, fresh: Task, start_first: bool) -> None:
        self.updated[fresh.ID] = None
        sub = self.store.watch(
            kinds={"task"}, filt=lambda ev: ev.obj is not None and ev.obj.ID == fresh.ID
        )
        try:

            def others(tx: ReadTx) -> Slot:
                return [t for t in self._current(slot, tx) if t.ID != fresh.ID]

            def create(tx: Tx) -> Task | Slot | None:
                if tx.get(Service, self.service.ID) is None:
                    raise _ServiceGone()
                # The slot is read again inside the write: the restart supervisor may have
                # replaced a failed task since it was read (on the spec this update brings,
                # during a rollback), and a replacement created beside it would leave the
                # slot with two tasks running.
                now = self._current(slot, tx)
                if not now or self._up_to_date(now) is not None:
                    return now  # given up, or brought up to date, meanwhile
                tx.create(fresh)
                return None if start_first else shut_down(tx, now)

            created = await write(self.store, create)
            if isinstance(created, list):
                self.updated.pop(fresh.ID, None)
                existing = self._up_to_date(created)
                if existing is not None:
                    await self._use_existing(created, existing)
                return
            old = created
            if start_first:
                await self.restarts.delay_start(None, fresh.ID, 0, False)
            else:
                await self.restarts.delay_start(old, fresh.ID, 0, True)

            # Wait for the new task to come up (or to be given up on).
            while True:
                t = self.store.view().get(Task, fresh.ID)
                if t is None or t.DesiredState > TaskState.RUNNING:
                    return
                if t.Status.State >= TaskState.RUNNING:
                    self.updated[fresh.ID] = self.clock.monotonic()
                    if start_first and t.Status.State == TaskState.RUNNING:
                        await write(self.store, lambda tx: shut_down(tx, others(tx)))
                    return
                await sub.get()
        finally:
            sub.close()

    async def _use_existing(self, slot: Slot, existing: Task) -> None:
        others = [t for t in slot if t.ID != existing.ID]
        if not others and existing.DesiredState == TaskState.RUNNING:
            return
        old = await write(self.store, lambda tx: shut_down(tx, others)) if others else None
        if existing.DesiredState != TaskState.RUNNING:
            # A replacement the restart supervisor is already starting keeps its own terms
            # (its restart delay, waiting for the task it replaces).
            started = self.restarts.pending_start(existing.ID)
            if started is None:
                started = self.restarts.delay_start(old, existing.ID, 0, True)
            await started

    async def _write_status(self, change: Callable[[Service], Service | None]) -> None:
        def fn(tx: Tx) -> None:
            current = tx.get(Service, self.service.ID)
            if current is None:
                return
            changed = change(current)
            if changed is not None:
                tx.update(changed)

        try:
            await write(self.store, fn)
        except Exception:
            log.exception("writing the update status of service %s failed", self.service.ID)


class UpdateSupervisor:
    """Runs at most one Updater per service."""

    def __init__(self, store: MemoryStore, clock: Clock, restarts: RestartSupervisor) -> None:
        self.store = store
        self.clock = clock
        self.restarts = restarts
        self._updates: dict[str, tuple[Updater, asyncio.Task]] = {}

    def update(self, service: Service, slots: list[Slot]) -> None:
        current = self._updates.get(service.ID)
        if current is not None:
            updater, task = current
            # A halted (paused) update is replaced when the user updates the service again,
            # even to the same spec: that is what resumes it.
            resumed = updater.halted and service.UpdateStatus is None
            if updater.service.Spec == service.Spec and not task.done() and not resumed:
                return  # already working towards this spec
            task.cancel()
        updater = Updater(self.store, self.clock, self.restarts, service)
        task = asyncio.get_running_loop().create_task(self._run(updater, slots))
        self._updates[service.ID] = (updater, task)

    async def _run(self, updater: Updater, slots: list[Slot]) -> None:
        try:
            await updater.run(slots)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("update of service %s failed", updater.service.ID)
        finally:
            entry = self._updates.get(updater.service.ID)
            if entry is not None and entry[0] is updater:
                del self._updates[updater.service.ID]

    def cancel(self, service_id: str) -> None:
        entry = self._updates.pop(service_id, None)
        if entry is not None:
            entry[1].cancel()

    def cancel_all(self) -> None:
        for _, task in self._updates.values():
            task.cancel()
        self._updates.clear()

    def active(self) -> dict[str, Updater]:
        return {sid: u for sid, (u, _) in self._updates.items()}

    async def run(self) -> None:
        """Lives as long as the orchestrators; cancels every update when stopped."""
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            self.cancel_all()
