"""The replicated orchestrator: keeps ``Replicas`` slots of each replicated service filled.

Scale up fills the lowest free slot numbers; scale down removes the slots on the nodes with the
most tasks of the service first, and among equals the ones not running, then the highest slot
numbers (desired ``remove``: the agent stops them, the reaper deletes them). Tasks that stop,
or whose node goes down, is drained or deleted, are handed to the restart supervisor. Slots
whose tasks all need replacing go to the updater.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from shoal.api.objects import Node, Service, Task
from shoal.api.types import TaskState
from shoal.clock import BackgroundTurns, Clock
from shoal.manager.orchestrator.restart import RestartSupervisor
from shoal.manager.orchestrator.service_orchestrator import ServiceOrchestrator
from shoal.manager.orchestrator.task import invalid_node, is_replicated, new_task
from shoal.manager.orchestrator.updater import UpdateSupervisor
from shoal.manager.orchestrator.waiting import logged, write_batch
from shoal.store import Event, MemoryStore, ReadTx, Tx
from shoal.store.proposal import Action

log = logging.getLogger(__name__)

Slot = list[Task]

STEP = 500  # tasks a new leader's first read looks at between two looks at the clock


# --- decisions -------------------------------------------------------------------------------


def group_by_slot(tasks: list[Task]) -> dict[int, Slot]:
    slots: dict[int, Slot] = {}
    for t in tasks:
        slots.setdefault(t.Slot or 0, []).append(t)
    return slots


def split_slots(
    slots: dict[int, Slot], updatable: Callable[[Slot], Slot]
) -> tuple[dict[int, Slot], dict[int, Slot]]:
    """(live, dead): live slots with the tasks that count in them; dead slots, which hold
    only tasks that stopped and whose replacement is not coming."""
    live: dict[int, Slot] = {}
    dead: dict[int, Slot] = {}
    for n, slot in slots.items():
        keep = updatable(slot)
        if keep:
            live[n] = keep
        else:
            dead[n] = slot
    return live, dead


def _is_running(slot: Slot) -> bool:
    return any(t.Status.State == TaskState.RUNNING for t in slot)


def scale_down_order(slots: list[Slot]) -> list[Slot]:
    """Slots in the order to keep them: the first ``replicas`` stay, the rest are removed.

    Each single-task slot on a node is numbered as the n-th copy of the service on that node,
    counting running tasks and low slot numbers first; slots are kept by that number, so
    removal starts on the nodes with the most copies. Unplaced slots, and slots with more
    than one task, go last."""
    by_running = sorted(slots, key=lambda s: (not _is_running(s), s[0].Slot or 0))
    per_node: dict[str, int] = {}
    ranked: list[tuple[int, int, Slot]] = []
    for i, slot in enumerate(by_running):
        if len(slot) == 1 and slot[0].NodeID:
            node = slot[0].NodeID
            per_node[node] = per_node.get(node, 0) + 1
            ranked.append((per_node[node], i, slot))
        else:
            ranked.append((1 << 62, i, slot))
    ranked.sort(key=lambda r: (r[0], r[1]))
    return [slot for _, _, slot in ranked]


def lowest_free_slots(taken: set[int], count: int) -> list[int]:
    free: list[int] = []
    n = 0
    while len(free) < count:
        n += 1
        if n not in taken:
            free.append(n)
    return free


@dataclass
class ReplicatedPlan:
    update: list[Slot] = field(default_factory=list)  # slots handed to the updater
    create: list[int] = field(default_factory=list)  # new slot numbers
    remove: list[Task] = field(default_factory=list)  # desired -> remove (scale down)
    delete: list[Task] = field(default_factory=list)  # dead slots' tasks, deleted


def plan_replicated(replicas: int, live: dict[int, Slot], dead: dict[int, Slot]) -> ReplicatedPlan:
    plan = ReplicatedPlan()
    ordered = [live[n] for n in sorted(live)]
    if replicas > len(live):
        plan.update = ordered
        plan.create = lowest_free_slots(set(live), replicas - len(live))
        reused = set(plan.create)
        plan.delete = [t for n, slot in sorted(dead.items()) if n not in reused for t in slot]
    elif replicas < len(live):
        keep = scale_down_order(ordered)
        plan.update = keep[:replicas]
        plan.remove = [t for slot in keep[replicas:] for t in slot]
        plan.delete = [t for _, slot in sorted(dead.items()) for t in slot]
    else:
        plan.update = ordered
        plan.delete = [t for _, slot in sorted(dead.items()) for t in slot]
    return plan


def needs_restart(task: Task, node: Node | None) -> bool:
    """A task meant to run that stopped, or sits on a node it must leave."""
    if task.DesiredState > TaskState.RUNNING:
        return False
    return task.Status.State > TaskState.RUNNING or (bool(task.NodeID) and invalid_node(node))


def set_desired(tx: Tx, task_id: str, state: TaskState) -> None:
    """Raise a task's desired state (never lower it)."""
    t = tx.get(Task, task_id)
    if t is None or t.DesiredState >= state:
        return
    tx.update(t.model_copy(update={"DesiredState": state}))


def delete_task(tx: Tx, task_id: str) -> None:
    if tx.get(Task, task_id) is not None:
        tx.delete(Task, task_id)


def remove_service_tasks(view: ReadTx, service_id: str) -> list[Callable[[Tx], None]]:
    """What ``service rm`` does to the tasks: desired ``remove``; the reaper deletes them
    once they stopped."""
    return [
        partial(set_desired, task_id=t.ID, state=TaskState.REMOVE)
        for t in view.tasks_of_service(service_id)
    ]


# --- the loop --------------------------------------------------------------------------------


class ReplicatedOrchestrator(ServiceOrchestrator):
    def __init__(
        self,
        store: MemoryStore,
        clock: Clock,
        *,
        restarts: RestartSupervisor | None = None,
        updates: UpdateSupervisor | None = None,
    ) -> None:
        super().__init__(store, clock, restarts=restarts, updates=updates)
        self._reconcile: dict[str, Service] = {}
        self._restart: set[str] = set()
        self._removed_services: list[str] = []
        # Reads the store as it is whenever used (a ReadTx holds no state): handle() reads
        # through it for every task event, hundreds of thousands while a large service starts.
        self._live = store.view()

    async def init(self, view: ReadTx) -> None:
        # One moment's lists, looked at in steps (see ReconcileLoop): the tasks of each
        # replicated service (no Service look-up per task) and the nodes they are on.
        services = [s for s in view.services() if is_replicated(s)]
        listed = [view.tasks_of_service(s.ID) for s in services]
        nodes = {n.ID: n for n in view.nodes()}
        for s in services:
            self._reconcile[s.ID] = s
        turns = BackgroundTurns()
        for tasks in listed:
            for first in range(0, len(tasks), STEP):
                for t in tasks[first : first + STEP]:
                    if t.DesiredState > TaskState.RUNNING:
                        continue  # needs_restart says no whatever its node
                    if needs_restart(t, nodes.get(t.NodeID) if t.NodeID else None):
                        self._restart.add(t.ID)
                await turns.between()

    def handle(self, ev: Event) -> None:
        obj = ev.obj
        if isinstance(obj, Service):
            if not is_replicated(obj):
                return
            if ev.action == Action.REMOVE:
                self._reconcile.pop(obj.ID, None)
                self._removed_services.append(obj.ID)
            else:
                self._reconcile[obj.ID] = obj
        elif isinstance(obj, Node):
            if ev.action == Action.REMOVE or invalid_node(obj):
                self._restart_tasks_on(obj.ID)
        elif isinstance(obj, Task):
            if ev.action == Action.REMOVE:
                self.restarts.cancel(obj.ID)
                if obj.DesiredState <= TaskState.RUNNING:
                    service = self.store.view().get(Service, obj.ServiceID)
                    if is_replicated(service):
                        assert service is not None
                        self._reconcile[service.ID] = service
                return
            # Called for every change of every task: the cheap test first. Most changes are
            # a task running (or on its way) on a node that is fine: no Service look-up.
            if obj.DesiredState > TaskState.RUNNING:
                return  # needs_restart says no, whatever its service and node
            view = self._live
            node = view.get(Node, obj.NodeID) if obj.NodeID else None
            if not needs_restart(obj, node):
                return
            if is_replicated(view.get(Service, obj.ServiceID) if obj.ServiceID else None):
                self._restart.add(obj.ID)

    def _restart_tasks_on(self, node_id: str) -> None:
        view = self.store.view()
        for t in view.tasks_on_node(node_id):
            if t.DesiredState > TaskState.RUNNING:
                continue
            if is_replicated(view.get(Service, t.ServiceID)):
                self._restart.add(t.ID)

    async def tick(self) -> None:
        try:
            await self._tick_removed()
            await self._tick_tasks()
            await self._tick_services()
        except Exception:
            log.exception("replicated orchestrator: reconciliation failed")

    async def _tick_removed(self) -> None:
        removed, self._removed_services = self._removed_services, []
        for service_id in removed:
            self.updates.cancel(service_id)
            self.restarts.clear_service_history(service_id)
            await write_batch(self.store, remove_service_tasks(self.store.view(), service_id))

    async def _tick_tasks(self) -> None:
        if not self._restart:
            return
        ids, self._restart = sorted(self._restart), set()

        def restart(tx: Tx, task_id: str) -> None:
            t = tx.get(Task, task_id)
            if t is None or t.DesiredState > TaskState.RUNNING:
                return
            service = tx.get(Service, t.ServiceID)
            if not is_replicated(service):
                return
            assert service is not None
            self.restarts.restart(tx, service, t)

        await write_batch(
            self.store,
            [logged(partial(restart, task_id=i), f"restarting task {i}") for i in ids],
        )

    async def _tick_services(self) -> None:
        if not self._reconcile:
            return
        services, self._reconcile = list(self._reconcile.values()), {}
        turns = BackgroundTurns()
        for s in services:
            await self.reconcile(s)
            await turns.between()

    async def reconcile(self, service: Service) -> None:
        view = self.store.view()
        current = view.get(Service, service.ID)
        if current is None:
            return
        if current.PendingDelete:
            await write_batch(self.store, remove_service_tasks(view, current.ID))
            return
        assert current.Spec.Mode.Replicated is not None
        slots = group_by_slot(view.tasks_of_service(current.ID))
        live, dead = split_slots(
            slots, lambda slot: self.restarts.updatable_tasks_in_slot(slot, current)
        )
        plan = plan_replicated(current.Spec.Mode.Replicated.Replicas, live, dead)
        self.updates.update(current, plan.update)
        now = self.clock.now()
        fns: list[Callable[[Tx], None]] = []
        for n in plan.create:

            def create(tx: Tx, n: int = n) -> None:
                if tx.get(Service, current.ID) is None:
                    return
                tx.create(new_task(current, now=now, slot=n))

            fns.append(logged(create, f"creating task {current.Spec.Name}.{n}"))
        for t in plan.delete:
            fns.append(partial(delete_task, task_id=t.ID))
        for t in plan.remove:
            fns.append(partial(set_desired, task_id=t.ID, state=TaskState.REMOVE))
        await write_batch(self.store, fns)
