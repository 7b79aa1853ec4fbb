"""The constraint enforcer: when a node changes so that tasks on it no longer fit (a label
they are constrained on was removed, its resources shrank), those tasks are rejected; the
orchestrators then move them (replicated) or retire them (global), as swarmkit does.

Only active nodes are checked: a drained node loses all its tasks anyway, a paused one keeps
them. The placement constraints checked are the service's current ones (a change of
constraints alone does not restart tasks whose node still fits, so the task's own copy may be
stale).
"""

import datetime as dt
import logging
from functools import partial
from typing import ClassVar

from shoal.api.objects import Node, Service, Task
from shoal.api.types import NodeAvailability, TaskState
from shoal.clock import BackgroundTurns, Clock
from shoal.manager.constraint import ConstraintError, node_matches, parse
from shoal.manager.orchestrator.reconcile_loop import ReconcileLoop
from shoal.manager.orchestrator.waiting import write_batch
from shoal.store import Event, MemoryStore, ReadTx, Tx
from shoal.store.proposal import Action

log = logging.getLogger(__name__)

REJECT_MESSAGE = "task rejected by constraint enforcer"
REJECT_ERR = "assigned node no longer meets constraints"


def _constraints_hold(expressions: list[str] | None, node: Node) -> bool:
    try:
        constraints = parse(expressions)
    except ConstraintError:
        return True
    return node_matches(constraints, node)


def noncompliant_tasks(node: Node, tasks: list[Task], services: dict[str, Service]) -> list[Task]:
    """Tasks on ``node`` that must go: constraints no longer met, or (oldest tasks keeping
    their reservation first) more CPU or memory reserved than the node has."""
    if node.Spec.Availability != NodeAvailability.ACTIVE:
        return []
    resources = node.Description.Resources if node.Description is not None else None
    cpus = resources.NanoCPUs if resources is not None else 0
    memory = resources.MemoryBytes if resources is not None else 0
    # A node that reports no resources at all is not checked for them (nothing to go by).
    check_resources = bool(cpus or memory)
    out: list[Task] = []
    for t in sorted(tasks, key=lambda t: (t.CreatedAt, t.ID)):
        if t.DesiredState < TaskState.ASSIGNED or t.DesiredState > TaskState.COMPLETE:
            continue
        if t.Status.State >= TaskState.COMPLETE:
            continue  # stopped tasks reserve nothing
        service = services.get(t.ServiceID)
        placement = service.Spec.TaskTemplate.Placement if service is not None else t.Spec.Placement
        if not _constraints_hold(placement.Constraints, node):
            out.append(t)
            continue
        if not check_resources:
            continue
        reserved = t.Spec.Resources.Reservations
        want_mem = reserved.MemoryBytes or 0
        want_cpu = reserved.NanoCPUs or 0
        if want_mem > memory or want_cpu > cpus:
            out.append(t)
            continue
        memory -= want_mem
        cpus -= want_cpu
    return out


def reject(tx: Tx, task_id: str, now: dt.datetime) -> None:
    t = tx.get(Task, task_id)
    if t is None or t.DesiredState > TaskState.COMPLETE or t.Status.State >= TaskState.COMPLETE:
        return
    # The observed state, not the desired one: desired state is the orchestrators' to set,
    # and they react to a rejected task by moving or retiring it.
    rejected = t.clone()
    rejected.Status.State = TaskState.REJECTED
    rejected.Status.Message = REJECT_MESSAGE
    rejected.Status.Err = REJECT_ERR
    rejected.Status.Timestamp = now
    tx.update(rejected)


class ConstraintEnforcer(ReconcileLoop):
    KINDS: ClassVar[frozenset[str]] = frozenset({"node"})

    def __init__(self, store: MemoryStore, clock: Clock) -> None:
        super().__init__(store, clock)
        self._pending: set[str] = set()

    async def init(self, view: ReadTx) -> None:
        self._pending = {node.ID for node in view.nodes()}

    def handle(self, ev: Event) -> None:
        if ev.action == Action.UPDATE and ev.obj is not None:
            self._pending.add(ev.obj.ID)

    async def tick(self) -> None:
        pending, self._pending = self._pending, set()
        turns = BackgroundTurns()
        for node_id in sorted(pending):
            await self.check(node_id)
            await turns.between()

    async def check(self, node_id: str) -> None:
        try:
            view = self.store.view()
            node = view.get(Node, node_id)
            if node is None:
                return
            tasks = view.tasks_on_node(node_id)
            services = {}
            for t in tasks:
                s = view.get(Service, t.ServiceID) if t.ServiceID else None
                if s is not None:
                    services[s.ID] = s
            doomed = noncompliant_tasks(node, tasks, services)
            now = self.clock.now()
            await write_batch(self.store, [partial(reject, task_id=t.ID, now=now) for t in doomed])
        except Exception:
            log.exception("constraint enforcer: checking node %s failed", node_id)
