"""The global orchestrator: one task of each global service on every node that can host it.

A node hosts a service's task when it is ready, active, and fits (constraints, platforms,
runtime); a paused node, or one whose state is unknown yet, keeps what it runs; a node that
is down, drained or no longer fits loses its tasks (desired ``shutdown``); a deleted node's
tasks are deleted. Tasks carry their NodeID from creation. Stopped tasks are restarted on
their node by the restart supervisor; spec changes go to the updater node by node.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from functools import partial

from shoal.api.objects import Node, Service, Task
from shoal.api.types import NodeAvailability, TaskState
from shoal.clock import BackgroundTurns, Clock
from shoal.manager.orchestrator.eligibility import NodeFit, node_fit
from shoal.manager.orchestrator.replicated import (
    STEP,
    delete_task,
    remove_service_tasks,
    set_desired,
)
from shoal.manager.orchestrator.restart import RestartSupervisor
from shoal.manager.orchestrator.service_orchestrator import ServiceOrchestrator
from shoal.manager.orchestrator.task import is_global, is_task_dirty, new_task
from shoal.manager.orchestrator.updater import UpdateSupervisor
from shoal.manager.orchestrator.waiting import logged, write_batch
from shoal.store import Event, MemoryStore, ReadTx, Tx
from shoal.store.proposal import Action

log = logging.getLogger(__name__)

Slot = list[Task]


# --- decisions -------------------------------------------------------------------------------


@dataclass
class GlobalPlan:
    create: list[tuple[str, str]] = field(default_factory=list)  # (service ID, node ID)
    shutdown: list[Task] = field(default_factory=list)
    update: list[Slot] = field(default_factory=list)  # per-node slots for the updater


def plan_global_service(service: Service, nodes: list[Node], slots: dict[str, Slot]) -> GlobalPlan:
    """Reconcile one service over all nodes. ``slots`` maps a node ID to the tasks of the
    service there that still count (see RestartSupervisor.updatable_tasks_in_slot)."""
    plan = GlobalPlan()
    seen: set[str] = set()
    for node in sorted(nodes, key=lambda n: n.ID):
        seen.add(node.ID)
        tasks = slots.get(node.ID, [])
        fit = node_fit(service, node)
        if fit == NodeFit.EVICT:
            plan.shutdown.extend(tasks)
        elif fit == NodeFit.HOST:
            if tasks:
                plan.update.append(tasks)
            else:
                plan.create.append((service.ID, node.ID))
    for node_id, tasks in sorted(slots.items(), key=lambda kv: kv[0] or ""):
        if node_id not in seen:
            plan.shutdown.extend(tasks)
    return plan


def plan_global_node(
    node: Node, services: list[tuple[Service, Slot]], dirty: Callable[[Service, Task], bool]
) -> GlobalPlan:
    """Reconcile one node over all global services (a node joined, came back, changed). Tasks
    out of date there are replaced at once, not by a rolling update: the service did not
    change, the node did."""
    plan = GlobalPlan()
    for service, tasks in services:
        fit = node_fit(service, node)
        if fit == NodeFit.EVICT:
            plan.shutdown.extend(tasks)
            continue
        if fit == NodeFit.KEEP:
            continue
        clean = [t for t in tasks if not dirty(service, t)]
        plan.shutdown.extend(t for t in tasks if dirty(service, t))
        if clean:
            plan.shutdown.extend(clean[1:])
        else:
            plan.create.append((service.ID, node.ID))
    return plan


class RestartAction(Enum):
    RESTART = "restart"
    SHUTDOWN = "shutdown"


def restart_action(service: Service, node: Node | None) -> RestartAction:
    """A global task stopped: restart it on its node if the node may still run it, else
    just shut it down."""
    fit = node_fit(service, node)
    if fit == NodeFit.HOST:
        return RestartAction.RESTART
    if fit == NodeFit.KEEP and node is not None:
        if node.Spec.Availability == NodeAvailability.PAUSE:
            return RestartAction.SHUTDOWN
        return RestartAction.RESTART
    return RestartAction.SHUTDOWN


# --- the loop --------------------------------------------------------------------------------


class GlobalOrchestrator(ServiceOrchestrator):
    def __init__(
        self,
        store: MemoryStore,
        clock: Clock,
        *,
        restarts: RestartSupervisor | None = None,
        updates: UpdateSupervisor | None = None,
    ) -> None:
        super().__init__(store, clock, restarts=restarts, updates=updates)
        self._services: set[str] = set()
        self._nodes: set[str] = set()
        self._deleted_nodes: list[str] = []
        self._removed_services: list[str] = []
        self._restart: set[str] = set()

    async def init(self, view: ReadTx) -> None:
        # One moment's task lists, looked at in steps (see ReconcileLoop).
        listed = [(s, view.tasks_of_service(s.ID)) for s in view.services() if is_global(s)]
        turns = BackgroundTurns()
        for s, tasks in listed:
            self._services.add(s.ID)
            for first in range(0, len(tasks), STEP):
                for t in tasks[first : first + STEP]:
                    if self._failed(t):
                        self._restart.add(t.ID)
                await turns.between()

    @staticmethod
    def _failed(t: Task) -> bool:
        return t.DesiredState <= TaskState.RUNNING and t.Status.State > TaskState.RUNNING

    def handle(self, ev: Event) -> None:
        obj = ev.obj
        if isinstance(obj, Service):
            if not is_global(obj):
                return
            if ev.action == Action.REMOVE:
                self._services.discard(obj.ID)
                self._removed_services.append(obj.ID)
            else:
                self._services.add(obj.ID)
        elif isinstance(obj, Node):
            if ev.action == Action.REMOVE:
                self._nodes.discard(obj.ID)
                self._deleted_nodes.append(obj.ID)
            else:
                self._nodes.add(obj.ID)
        elif isinstance(obj, Task):
            if ev.action == Action.UPDATE and self._failed(obj):
                self._restart.add(obj.ID)
            elif ev.action == Action.REMOVE:
                self.restarts.cancel(obj.ID)

    async def tick(self) -> None:
        try:
            await self._tick_removed()
            await self._tick_tasks()
            await self._tick_services()
            await self._tick_nodes()
        except Exception:
            log.exception("global orchestrator: reconciliation failed")

    def _global_services(self, view: ReadTx) -> list[Service]:
        return [s for s in view.services() if is_global(s) and not s.PendingDelete]

    def _slots(self, view: ReadTx, service: Service) -> dict[str, Slot]:
        by_node: dict[str, Slot] = {}
        for t in view.tasks_of_service(service.ID):
            by_node.setdefault(t.NodeID or "", []).append(t)
        slots = {}
        for node_id, tasks in by_node.items():
            keep = self.restarts.updatable_tasks_in_slot(tasks, service)
            if keep:
                slots[node_id] = keep
        return slots

    async def _tick_removed(self) -> None:
        removed, self._removed_services = self._removed_services, []
        for service_id in removed:
            self.updates.cancel(service_id)
            self.restarts.clear_service_history(service_id)
            await write_batch(self.store, remove_service_tasks(self.store.view(), service_id))
        deleted, self._deleted_nodes = self._deleted_nodes, []
        view = self.store.view()
        fns = []
        for node_id in deleted:
            for t in view.tasks_on_node(node_id):
                if is_global(view.get(Service, t.ServiceID)):
                    fns.append(partial(delete_task, task_id=t.ID))
        await write_batch(self.store, fns)

    async def _tick_tasks(self) -> None:
        if not self._restart:
            return
        ids, self._restart = sorted(self._restart), set()

        def restart(tx: Tx, task_id: str) -> None:
            t = tx.get(Task, task_id)
            if t is None or t.DesiredState > TaskState.RUNNING:
                return
            service = tx.get(Service, t.ServiceID)
            if not is_global(service):
                return
            assert service is not None
            node = tx.get(Node, t.NodeID) if t.NodeID else None
            if restart_action(service, node) == RestartAction.RESTART:
                self.restarts.restart(tx, service, t)
            else:
                set_desired(tx, t.ID, TaskState.SHUTDOWN)

        await write_batch(
            self.store,
            [logged(partial(restart, task_id=i), f"restarting task {i}") for i in ids],
        )

    async def _tick_services(self) -> None:
        if not self._services:
            return
        ids, self._services = sorted(self._services), set()
        turns = BackgroundTurns()
        for service_id in ids:
            await self.reconcile_service(service_id)
            await turns.between()

    async def reconcile_service(self, service_id: str) -> None:
        view = self.store.view()
        service = view.get(Service, service_id)
        if not is_global(service):
            return
        assert service is not None
        if service.PendingDelete:
            await write_batch(self.store, remove_service_tasks(view, service_id))
            return
        plan = plan_global_service(service, view.nodes(), self._slots(view, service))
        await self._apply(plan, {service.ID: service})
        if plan.update:
            latest = self.store.view().get(Service, service_id)
            if latest is not None:
                self.updates.update(latest, plan.update)

    async def _tick_nodes(self) -> None:
        if not self._nodes:
            return
        ids, self._nodes = sorted(self._nodes), set()
        turns = BackgroundTurns()
        for node_id in ids:
            await self.reconcile_node(node_id)
            await turns.between()

    async def reconcile_node(self, node_id: str) -> None:
        view = self.store.view()
        node = view.get(Node, node_id)
        if node is None:
            return
        on_node = view.tasks_on_node(node_id)
        services = []
        for service in self._global_services(view):
            tasks = [t for t in on_node if t.ServiceID == service.ID]
            services.append((service, self.restarts.updatable_tasks_in_slot(tasks, service)))
        plan = plan_global_node(node, services, lambda s, t: is_task_dirty(s, t, node))
        await self._apply(plan, {s.ID: s for s, _ in services})

    async def _apply(self, plan: GlobalPlan, services: dict[str, Service]) -> None:
        now = self.clock.now()
        fns: list[Callable[[Tx], None]] = [
            partial(set_desired, task_id=t.ID, state=TaskState.SHUTDOWN) for t in plan.shutdown
        ]
        for service_id, node_id in plan.create:
            service = services[service_id]

            def create(tx: Tx, service: Service = service, node_id: str = node_id) -> None:
                if tx.get(Service, service.ID) is None or tx.get(Node, node_id) is None:
                    return
                tx.create(new_task(service, now=now, node_id=node_id))

            fns.append(logged(create, f"creating task of {service.Spec.Name} on {node_id}"))
        await write_batch(self.store, fns)
