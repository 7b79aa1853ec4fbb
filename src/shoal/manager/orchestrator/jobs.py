"""The job orchestrator: runs ``replicated-job`` and ``global-job`` services to completion.

A replicated job runs tasks until ``TotalCompletions`` of them have completed, at most
``MaxConcurrent`` at once; a global job runs one task to completion on every eligible node.
Job tasks are created with desired state ``complete`` (as swarmkit): a task that completes is
done, never restarted; one that fails is replaced in its slot (or on its node) unless the
restart policy says not to (condition ``none``, or ``MaxAttempts`` failures in this
iteration). Each update of a job service starts a new iteration (``JobStatus.JobIteration``):
the job runs again from nothing, and tasks of older iterations still running are shut down.
"""

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from functools import partial

from shoal.api.base import Version
from shoal.api.objects import Node, Service, Task
from shoal.api.types import RestartCondition, TaskState
from shoal.clock import Clock
from shoal.manager.orchestrator.eligibility import NodeFit, node_fit
from shoal.manager.orchestrator.reconcile_loop import ReconcileLoop
from shoal.manager.orchestrator.replicated import set_desired
from shoal.manager.orchestrator.restart_policy import restart_policy
from shoal.manager.orchestrator.task import new_task
from shoal.manager.orchestrator.waiting import logged, write_batch
from shoal.store import Event, MemoryStore, ReadTx, Tx
from shoal.store.proposal import Action

log = logging.getLogger(__name__)


# --- decisions -------------------------------------------------------------------------------


def iteration_of(service: Service) -> int:
    return service.JobStatus.JobIteration.Index if service.JobStatus is not None else 0


def _task_iteration(task: Task) -> int:
    return task.JobIteration.Index if task.JobIteration is not None else 0


def _active(task: Task) -> bool:
    """Meant to run to completion and not finished yet."""
    return task.DesiredState <= TaskState.COMPLETE and task.Status.State <= TaskState.RUNNING


def _failed(task: Task) -> bool:
    return task.Status.State > TaskState.COMPLETE


def may_replace(service: Service, failures: int) -> bool:
    """Whether a failed task gets a replacement, after ``failures`` failures in its slot."""
    policy = restart_policy(service.Spec.TaskTemplate)
    if policy.condition == RestartCondition.NONE:
        return False
    return not (policy.max_attempts and failures >= policy.max_attempts)


def replace_at(service: Service, failed: list[Task]) -> dt.datetime:
    """When the last failed task may be replaced: the restart delay after it stopped."""
    last = max(t.Status.Timestamp for t in failed)
    delay = restart_policy(service.Spec.TaskTemplate).delay
    return last + dt.timedelta(microseconds=delay // 1000)


@dataclass
class JobPlan:
    create_slots: list[int] = field(default_factory=list)  # replicated job: new tasks' slots
    create_nodes: list[str] = field(default_factory=list)  # global job: new tasks' nodes
    shutdown: list[Task] = field(default_factory=list)  # old iterations' tasks still running
    wake_at: dt.datetime | None = None  # when a failed task waiting out its delay is due


class Retry(Enum):
    NOW = "now"
    LATER = "later"  # once the restart delay is over
    NEVER = "never"


def _retry(plan: JobPlan, service: Service, tasks: list[Task], now: dt.datetime) -> Retry:
    """Whether to replace the failed ``tasks`` of one slot (or node) now; if only the restart
    delay stands in the way, note in the plan when to look again."""
    failed = [t for t in tasks if _failed(t)]
    if not may_replace(service, len(failed)):
        return Retry.NEVER
    due = replace_at(service, failed)
    if due <= now:
        return Retry.NOW
    plan.wake_at = due if plan.wake_at is None else min(plan.wake_at, due)
    return Retry.LATER


def _split_iterations(service: Service, tasks: list[Task]) -> tuple[list[Task], list[Task]]:
    """(this iteration's tasks, older iterations' tasks still meant to run)."""
    current = iteration_of(service)
    mine = [t for t in tasks if _task_iteration(t) == current]
    stale = [
        t
        for t in tasks
        if _task_iteration(t) != current and t.DesiredState <= TaskState.COMPLETE
        if t.Status.State <= TaskState.RUNNING
    ]
    return mine, stale


def plan_replicated_job(service: Service, tasks: list[Task], now: dt.datetime) -> JobPlan:
    job = service.Spec.Mode.ReplicatedJob
    assert job is not None
    mine, stale = _split_iterations(service, tasks)
    plan = JobPlan(shutdown=stale)
    by_slot: dict[int, list[Task]] = {}
    for t in mine:
        by_slot.setdefault(t.Slot or 0, []).append(t)
    # Slots are numbered 0..TotalCompletions-1 (as swarmkit numbers a replicated job's, where
    # a service's replicas start at 1), each done once one of its tasks completed.
    # Slots whose tasks failed and may be replaced come first, then fresh slots; a slot
    # whose restart attempts ran out stays failed, and the job never completes. A slot
    # waiting out its restart delay holds its place in MaxConcurrent, as in swarmkit (where
    # the replacement exists already, held back until the delay is over).
    retry: list[int] = []
    waiting = 0
    for n in sorted(by_slot):
        slot = by_slot[n]
        if any(_active(t) or t.Status.State == TaskState.COMPLETE for t in slot):
            continue
        decision = _retry(plan, service, slot, now)
        if decision == Retry.NOW:
            retry.append(n)
        elif decision == Retry.LATER:
            waiting += 1
    completed = sum(1 for t in mine if t.Status.State == TaskState.COMPLETE)
    running = sum(1 for t in mine if _active(t)) + waiting
    budget = min(job.MaxConcurrent - running, job.TotalCompletions - completed - running)
    if budget <= 0:
        return plan
    fresh = [n for n in range(job.TotalCompletions) if n not in by_slot]
    plan.create_slots = (retry + fresh)[:budget]
    return plan


def plan_global_job(
    service: Service, tasks: list[Task], nodes: list[Node], now: dt.datetime
) -> JobPlan:
    mine, stale = _split_iterations(service, tasks)
    plan = JobPlan(shutdown=stale)
    by_node: dict[str, list[Task]] = {}
    for t in mine:
        by_node.setdefault(t.NodeID or "", []).append(t)
    for node in sorted(nodes, key=lambda n: n.ID):
        if node_fit(service, node) != NodeFit.HOST:
            continue
        on_node = by_node.get(node.ID, [])
        if any(_active(t) or t.Status.State == TaskState.COMPLETE for t in on_node):
            continue
        if on_node and _retry(plan, service, on_node, now) != Retry.NOW:
            continue
        plan.create_nodes.append(node.ID)
    return plan


def new_job_task(
    service: Service, *, now: dt.datetime, slot: int | None = None, node_id: str | None = None
) -> Task:
    task = new_task(service, now=now, slot=slot, node_id=node_id, desired=TaskState.COMPLETE)
    task.JobIteration = Version(Index=iteration_of(service))
    return task


# --- the loop --------------------------------------------------------------------------------


def is_job(service: Service | None) -> bool:
    return service is not None and service.Spec.Mode.is_job


class JobOrchestrator(ReconcileLoop):
    KINDS = frozenset({"service", "task", "node"})

    def __init__(self, store: MemoryStore, clock: Clock) -> None:
        super().__init__(store, clock)
        self._dirty: set[str] = set()
        self._removed: list[str] = []
        self._all = True  # reconcile every job service at the next tick
        self._lock = asyncio.Lock()  # a timer's tick and an event's tick never interleave
        self._timers: dict[str, asyncio.Task[None]] = {}

    async def run(self) -> None:
        try:
            await super().run()
        finally:
            for timer in self._timers.values():
                timer.cancel()
            self._timers.clear()

    def _wake(self, service_id: str, at: dt.datetime) -> None:
        """Reconcile the service again at ``at`` (a failed task's restart delay is over)."""
        if service_id in self._timers:
            return

        async def later() -> None:
            await self.clock.sleep(max(0.0, (at - self.clock.now()).total_seconds()))
            self._timers.pop(service_id, None)
            self._dirty.add(service_id)
            await self.tick()

        self._timers[service_id] = asyncio.create_task(later())

    async def init(self, view: ReadTx) -> None:
        self._all = True

    def handle(self, ev: Event) -> None:
        obj = ev.obj
        if isinstance(obj, Service):
            if not is_job(obj):
                return
            if ev.action == Action.REMOVE:
                self._removed.append(obj.ID)
            else:
                self._dirty.add(obj.ID)
        elif isinstance(obj, Task):
            if obj.ServiceID:
                self._dirty.add(obj.ServiceID)
        elif isinstance(obj, Node):
            self._all = True

    async def tick(self) -> None:
        try:
            async with self._lock:
                await self._tick()
        except Exception:
            log.exception("job orchestrator: reconciliation failed")

    async def _tick(self) -> None:
        view = self.store.view()
        removed, self._removed = self._removed, []
        fns: list[Callable[[Tx], object]] = []
        for service_id in removed:
            for t in view.tasks_of_service(service_id):
                fns.append(partial(set_desired, task_id=t.ID, state=TaskState.REMOVE))
        if self._all:
            ids = {s.ID for s in view.services() if is_job(s)}
            self._all = False
        else:
            ids = set()
        ids |= self._dirty
        self._dirty = set()
        now = self.clock.now()
        nodes = view.nodes()
        for service_id in sorted(ids):
            service = view.get(Service, service_id)
            if service is None or not is_job(service):
                continue
            tasks = view.tasks_of_service(service.ID)
            if service.PendingDelete:
                for t in tasks:
                    fns.append(partial(set_desired, task_id=t.ID, state=TaskState.REMOVE))
                continue
            if service.Spec.Mode.ReplicatedJob is not None:
                plan = plan_replicated_job(service, tasks, now)
            else:
                plan = plan_global_job(service, tasks, nodes, now)
            if plan.wake_at is not None:
                self._wake(service.ID, plan.wake_at)
            for t in plan.shutdown:
                fns.append(partial(set_desired, task_id=t.ID, state=TaskState.SHUTDOWN))
            for slot in plan.create_slots:
                fns.append(_creator(service, new_job_task(service, now=now, slot=slot)))
            for node_id in plan.create_nodes:
                fns.append(_creator(service, new_job_task(service, now=now, node_id=node_id)))
        await write_batch(self.store, fns)


def _creator(service: Service, task: Task) -> Callable[[Tx], object]:
    def create(tx: Tx) -> None:
        current = tx.get(Service, service.ID)
        if current is None or iteration_of(current) != _task_iteration(task):
            return
        tx.create(task)

    return logged(create, f"creating job task {task.ID} of {service.Spec.Name}")
