"""What a change did to one service's tasks in a plan's sandbox, told as a plan: which tasks
are created, replaced (in which update batch) or stopped, on which nodes, which cannot be
placed and why, and how many are left as they are."""

from dataclasses import dataclass, field
from typing import Any

from shoal.api.objects import Node, Service, Task
from shoal.api.types import TaskState
from shoal.manager.orchestrator import is_task_dirty
from shoal.manager.orchestrator.update_config import update_settings
from shoal.store import ReadTx

CREATE = "create"
REPLACE = "replace"
STOP = "stop"
ROLLBACK = "rollback"  # an operation (update to the previous spec), not a task's action
_ACTION_ORDER = {REPLACE: 0, CREATE: 1, STOP: 2}


@dataclass
class TaskChange:
    action: str  # create | replace | stop
    name: str  # web.3, or web.<node id> for a global service
    slot: int | None
    node_id: str = ""  # where the new task runs ("" if it cannot be placed; stop: unused)
    node: str = ""
    previous_node_id: str = ""  # where the task replaced or stopped ran
    previous_node: str = ""
    batch: int = 0  # replace: the update batch, from 1
    error: str = ""  # why the new task cannot be placed

    def to_json(self) -> dict[str, Any]:
        return {
            "Action": self.action,
            "Name": self.name,
            "Slot": self.slot,
            "NodeID": self.node_id,
            "Node": self.node,
            "PreviousNodeID": self.previous_node_id,
            "PreviousNode": self.previous_node,
            "Batch": self.batch,
            "Error": self.error,
        }


@dataclass
class ServiceOutcome:
    id: str  # "" for a service a dry run would create
    name: str
    operation: str  # create | update
    mode: str  # replicated, global, replicated-job, global-job
    tasks: list[TaskChange] = field(default_factory=list)
    unchanged: int = 0  # tasks left as they are
    outdated: int = 0  # of those, tasks still on the old spec (the update stops short)
    update: dict[str, Any] | None = None

    def count(self, action: str) -> int:
        return sum(1 for t in self.tasks if t.action == action)

    @property
    def unplaced(self) -> int:
        return sum(1 for t in self.tasks if t.action != STOP and t.error)

    def to_json(self) -> dict[str, Any]:
        return {
            "ID": self.id,
            "Name": self.name,
            "Operation": self.operation,
            "Mode": self.mode,
            "Tasks": [t.to_json() for t in self.tasks],
            "Summary": {
                "Create": self.count(CREATE),
                "Replace": self.count(REPLACE),
                "Stop": self.count(STOP),
                "Unplaced": self.unplaced,
                "Unchanged": self.unchanged,
                "Outdated": self.outdated,
            },
            "Update": self.update,
        }


def is_live(task: Task) -> bool:
    """Meant to run (or to run to completion) and not stopped."""
    return task.DesiredState <= TaskState.COMPLETE and task.Status.State <= TaskState.RUNNING


def _placed(task: Task) -> bool:
    return bool(task.NodeID) and task.Status.State >= TaskState.ASSIGNED


def _why_unplaced(task: Task) -> str:
    # The scheduler's reason, or the allocator's while the task waits for an address.
    return task.Status.Err or task.Status.Message or "pending"


def _node_name(view: ReadTx, node_id: str | None) -> str:
    node = view.get(Node, node_id) if node_id else None
    return node.hostname if node is not None else (node_id or "")


def service_outcome(
    view: ReadTx,
    service: Service,
    operation: str,
    before: list[Task],
    created: dict[str, Task],
    created_in_round: dict[str, int],
) -> ServiceOutcome:
    """Compare the service's tasks ``before`` the change with those in ``view`` after it;
    ``created`` holds the last version of every task created meanwhile (with the agent round
    it was created in), deleted ones included."""
    is_global = service.Spec.Mode.Global is not None or service.Spec.Mode.GlobalJob is not None
    outcome = ServiceOutcome(
        id=service.ID if operation != CREATE else "",
        name=service.Spec.Name,
        operation=operation,
        mode=service.Spec.Mode.name,
    )
    after = {t.ID: t for t in view.tasks_of_service(service.ID)}
    stopped: list[Task] = []
    for old in before:
        if not is_live(old):
            continue
        now = after.get(old.ID)
        if now is None or now.DesiredState > TaskState.COMPLETE:
            stopped.append(old)
            continue
        outcome.unchanged += 1
        node = view.get(Node, now.NodeID) if now.NodeID else None
        if is_task_dirty(service, now, node):
            outcome.outdated += 1

    def where(t: Task) -> Any:
        return t.NodeID if is_global else t.Slot

    stopped_at = {where(t): t for t in stopped}
    new = [after.get(i, t) for i, t in created.items() if t.ServiceID == service.ID]
    replaced_rounds = sorted(
        {created_in_round[t.ID] for t in new if where(t) in stopped_at and t.ID in created_in_round}
    )
    batch_of = {r: i + 1 for i, r in enumerate(replaced_rounds)}
    for t in new:
        previous = stopped_at.pop(where(t), None)
        change = TaskChange(
            action=REPLACE if previous is not None else CREATE,
            name=t.name,
            slot=t.Slot,
        )
        # A global service's task has its node from the start, placed or not.
        change.node_id = t.NodeID or ""
        change.node = _node_name(view, t.NodeID)
        if not _placed(t):
            change.error = _why_unplaced(t)
        if previous is not None:
            change.previous_node_id = previous.NodeID or ""
            change.previous_node = _node_name(view, previous.NodeID)
            change.batch = batch_of.get(created_in_round.get(t.ID, -1), 0)
        outcome.tasks.append(change)
    for old in stopped_at.values():
        outcome.tasks.append(
            TaskChange(
                action=STOP,
                name=old.name,
                slot=old.Slot,
                previous_node_id=old.NodeID or "",
                previous_node=_node_name(view, old.NodeID),
            )
        )
    outcome.tasks.sort(
        key=lambda c: (_ACTION_ORDER[c.action], c.batch, c.slot or 0, c.node, c.name)
    )
    if outcome.count(REPLACE) or outcome.outdated:
        settings = update_settings(service.Spec, rollback=operation == ROLLBACK)
        status = service.UpdateStatus
        outcome.update = {
            "Parallelism": settings.parallelism,
            "Delay": settings.delay,
            "Order": settings.order.value,
            "FailureAction": settings.failure_action.value,
            "Batches": len(replaced_rounds),
            "State": status.State.value if status is not None and status.State else "",
        }
    return outcome
