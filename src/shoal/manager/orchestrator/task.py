"""Tasks as the orchestrators see them: making a task from a service, telling whether a task
still matches its service (dirtiness), and the small predicates every orchestrator shares."""

import datetime as dt
from collections.abc import Iterable
from typing import NamedTuple

from shoal.api.base import Annotations, Version
from shoal.api.ids import new_id
from shoal.api.objects import Node, Service, Task, TaskStatus
from shoal.api.specs import TaskSpec
from shoal.api.types import NodeAvailability, NodeState, TaskState
from shoal.manager.allocator import PENDING_MESSAGE
from shoal.manager.constraint import Constraint, ConstraintError, node_matches, parse


class SlotKey(NamedTuple):
    """Where a task lives: (service, slot) for replicated services, (service, node) for global
    ones. The restart history and the task reaper count per SlotKey."""

    service_id: str
    slot: int | None = None
    node_id: str | None = None


def is_replicated(service: Service | None) -> bool:
    return service is not None and service.Spec.Mode.Replicated is not None


def is_global(service: Service | None) -> bool:
    return service is not None and service.Spec.Mode.Global is not None


def slot_key(service: Service, task: Task) -> SlotKey:
    if is_global(service):
        return SlotKey(task.ServiceID, None, task.NodeID)
    return SlotKey(task.ServiceID, task.Slot, None)


def new_task(
    service: Service,
    *,
    now: dt.datetime,
    slot: int | None = None,
    node_id: str | None = None,
    desired: TaskState = TaskState.RUNNING,
) -> Task:
    """A new task for ``service``: in ``slot`` (replicated) or on ``node_id`` (global).

    New, for the allocator to give it its network addresses and move it on to pending; or,
    with no network to attach, pending at once, as the allocator would have made it. That
    step was a write of its own for every task: about one store change in five of a task's
    way to running, in a leader whose pace is set by its proposals (issue 15).

    The task shares the service's template, endpoint and spec version, as the store has
    them, rather than copies: stored objects never change in place (see store/intern.py),
    and the store would share one instance among the service's tasks all the same. The
    copies were 5.1% of a leader's samples while it created 100,000 tasks (making the tasks,
    8.2% in all; py-spy, issue 15)."""
    spec = service.Spec
    if spec.TaskTemplate.Networks:
        status = TaskStatus(State=TaskState.NEW, Timestamp=now, Message="created")
    else:
        status = TaskStatus(State=TaskState.PENDING, Timestamp=now, Message=PENDING_MESSAGE)
    return Task(
        ID=new_id(),
        ServiceID=service.ID,
        Slot=slot,
        NodeID=node_id,
        Spec=spec.TaskTemplate,
        ServiceAnnotations=Annotations(Name=spec.Name, Labels=dict(spec.Labels)),
        SpecVersion=service.SpecVersion,
        Endpoint=spec.EndpointSpec,
        DesiredState=desired,
        Status=status,
    )


def _constraints_of(spec: TaskSpec) -> list[Constraint]:
    try:
        return parse(spec.Placement.Constraints)
    except ConstraintError:
        # The control API refuses bad constraints; one that slipped through constrains nothing,
        # as in swarmkit.
        return []


def service_constraints_match(service: Service, node: Node | None) -> bool:
    return node is not None and node_matches(_constraints_of(service.Spec.TaskTemplate), node)


def _only_placement_differs(service_spec: TaskSpec, task_spec: TaskSpec) -> bool:
    if service_spec.Placement == task_spec.Placement:
        return False
    return service_spec.model_copy(update={"Placement": task_spec.Placement}) == task_spec


def made_for_current_spec(service: Service, task: Task) -> bool:
    """``task`` was made from the service's spec as it is now: it is not dirty, whatever its
    node (the first test of ``is_task_dirty``, for callers that look the node up only when
    needed)."""
    return (
        task.SpecVersion is not None
        and service.SpecVersion is not None
        and task.SpecVersion.Index == service.SpecVersion.Index
    )


def is_task_dirty(service: Service, task: Task, node: Node | None) -> bool:
    """True if ``task`` no longer matches what ``service`` asks for, so an update must replace
    it. Only the task template and the endpoint count: a change of replicas, update config or
    labels leaves tasks alone. A change of placement constraints only, that the task's node
    still satisfies, leaves the task alone too."""
    if made_for_current_spec(service, task):
        return False
    spec = service.Spec.TaskTemplate
    if _only_placement_differs(spec, task.Spec) and service_constraints_match(service, node):
        return False
    return spec != task.Spec or task.Endpoint != service.Spec.EndpointSpec


def invalid_node(node: Node | None) -> bool:
    """A node whose tasks must move: gone, down, or drained."""
    return (
        node is None
        or node.Status.State == NodeState.DOWN
        or node.Spec.Availability == NodeAvailability.DRAIN
    )


def task_timestamp(task: Task) -> tuple[dt.datetime, dt.datetime, str]:
    """Sort key: when the task last changed state (ties broken by creation, then ID)."""
    return (task.Status.Timestamp, task.CreatedAt, task.ID)


def newest(tasks: Iterable[Task]) -> Task | None:
    return max(tasks, key=task_timestamp, default=None)


def spec_version_index(version: Version | None) -> int | None:
    return version.Index if version is not None else None
