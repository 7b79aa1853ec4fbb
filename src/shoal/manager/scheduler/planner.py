"""The scheduler's decisions, without I/O: which node each pending task goes to, and what a
task that fits nowhere says about it.

``plan`` places tasks on a ``NodeSet`` (it records each placement there, so later decisions
see it) and returns the new versions of the tasks to write. Tasks are handled in groups that
look the same to the filters (one service, same reservations, placement, ports, runtime): the
filters run once per node per group, and each placement then costs a heap operation.
"""

import datetime as dt
import functools
from collections.abc import Iterable
from dataclasses import dataclass, field

from shoal.api.objects import Task, TaskStatus
from shoal.api.types import TaskState
from shoal.manager.scheduler.filters import Filter
from shoal.manager.scheduler.nodeinfo import NodeInfo, task_host_ports, task_reservations
from shoal.manager.scheduler.nodeset import NodeSet
from shoal.manager.scheduler.pipeline import Pipeline, no_suitable_node
from shoal.manager.scheduler.spread import SpreadTree, spread_descriptors

ASSIGNED_MESSAGE = "scheduler assigned task to node"
PREASSIGNED_MESSAGE = "scheduler confirmed task can run on preassigned node"


@dataclass
class Plan:
    """What ``plan`` decided. ``assigned`` and ``unplaced_changed`` are the task versions to
    write; ``unplaced`` holds every task left pending (in its newest version)."""

    assigned: list[Task] = field(default_factory=list)
    unplaced: list[Task] = field(default_factory=list)
    unplaced_changed: list[Task] = field(default_factory=list)

    @property
    def writes(self) -> list[Task]:
        return self.assigned + self.unplaced_changed


# The desired states of a task still meant to run (up to complete): a set, as checking
# membership costs less than TaskState's ordering, called three times per task placed.
_MEANT_TO_RUN = frozenset(s for s in TaskState if s <= TaskState.COMPLETE)


def schedulable(task: Task) -> bool:
    """Waiting for a node: pending, and still meant to run."""
    return task.Status.State == TaskState.PENDING and task.DesiredState in _MEANT_TO_RUN


@functools.lru_cache(maxsize=4)
def _assigned_status(now: dt.datetime, message: str) -> TaskStatus:
    return TaskStatus(State=TaskState.ASSIGNED, Timestamp=now, Message=message)


def assigned_version(task: Task, node_id: str, message: str, now: dt.datetime) -> Task:
    # A shallow copy: the parts it shares with the stored task are never modified. The
    # status is one made once per pass and shared by every task placed in it: stored objects
    # are never changed in place (a writer replaces a task's Status, or clones the task).
    return task.model_copy(update={"NodeID": node_id, "Status": _assigned_status(now, message)})


def with_err(task: Task, err: str, now: dt.datetime) -> Task:
    status = task.Status.model_copy(update={"Err": err, "Timestamp": now})
    return task.model_copy(update={"Status": status})


def group_key(task: Task) -> tuple:
    """Tasks with equal keys pass and fail the same filters on the same nodes."""
    placement = task.Spec.Placement
    return (
        task.ServiceID,
        task.Spec.runtime,
        task_reservations(task),
        tuple(placement.Constraints or ()),
        tuple((p.Architecture, p.OS) for p in placement.Platforms or ()),
        placement.MaxReplicas or 0,
        repr(placement.Preferences) if placement.Preferences else "",
        tuple(task_host_ports(task)),
    )


def _order(task: Task) -> tuple[int, str]:
    # Lower slots first, so web.1 gets the best node: a reproducible result.
    return (task.Slot or 0, task.ID)


class Planner:
    def __init__(self, pipeline: Pipeline | None = None) -> None:
        self.pipeline = pipeline or Pipeline()

    def plan(self, nodes: NodeSet, tasks: Iterable[Task], now: dt.datetime) -> Plan:
        """Decide for each schedulable task. Tasks given a node by their orchestrator (global
        services) are only checked against that node, and go first."""
        result = Plan()
        groups: dict[tuple, list[Task]] = {}
        preassigned: list[Task] = []
        for task in tasks:
            if not schedulable(task):
                continue
            if task.NodeID:
                preassigned.append(task)
            else:
                groups.setdefault(group_key(task), []).append(task)
        for task in preassigned:
            self._check_preassigned(nodes, task, now, result)
        for group in groups.values():
            group.sort(key=_order)
            self._place_group(nodes, group, now, result)
        return result

    def _check_preassigned(self, nodes: NodeSet, task: Task, now: dt.datetime, out: Plan) -> None:
        info = nodes.get(task.NodeID)
        if info is None:
            # The node is gone (or not known yet): nothing to decide until it appears.
            out.unplaced.append(task)
            return
        self.pipeline.set_task(task)
        failed = self.pipeline.first_failure(info)
        if failed is None:
            new = assigned_version(task, info.id, PREASSIGNED_MESSAGE, now)
            info.add_task(new)
            out.assigned.append(new)
            return
        # Swarm words this one without the "no suitable node" prefix.
        self._unplaced(task, self.pipeline.compose({failed: 1}), now, out)

    def _place_group(self, nodes: NodeSet, group: list[Task], now: dt.datetime, out: Plan) -> None:
        pipeline = self.pipeline
        first = group[0]
        pipeline.set_task(first)
        failures: dict[Filter, int] = {}
        eligible: list[NodeInfo] = []
        for info in nodes:
            failed = pipeline.first_failure(info)
            if failed is None:
                eligible.append(info)
            else:
                failures[failed] = failures.get(failed, 0) + 1

        remaining = iter(group)
        if eligible:
            descriptors = spread_descriptors(first.Spec.Placement.Preferences)
            tree = SpreadTree(nodes, eligible, first.ServiceID, descriptors)
            # The same for every task of the group (they are part of its key).
            reservations, host_ports = task_reservations(first), task_host_ports(first)
            for task in remaining:
                picked = tree.pop()
                if picked is None:
                    # Out of room: this task and the rest stay pending.
                    out_of_room = [task, *remaining]
                    explanation = pipeline.explain(nodes)
                    for t in out_of_room:
                        self._unplaced(t, no_suitable_node(explanation), now, out)
                    return
                info, path = picked
                new = assigned_version(task, info.id, ASSIGNED_MESSAGE, now)
                info.place(new, reservations, host_ports)
                out.assigned.append(new)
                # Only this node changed: the filters that depend on what a node holds
                # (resources, ports, replicas per node) may now turn it away.
                if pipeline.check(info):
                    tree.push(info, path)
                else:
                    tree.drop(info, path, placed=True)
            return
        err = no_suitable_node(pipeline.compose(failures))
        for task in group:
            self._unplaced(task, err, now, out)

    @staticmethod
    def _unplaced(task: Task, err: str, now: dt.datetime, out: Plan) -> None:
        if task.Status.Err == err:
            out.unplaced.append(task)
            return
        new = with_err(task, err, now)
        out.unplaced.append(new)
        out.unplaced_changed.append(new)


def plan(
    nodes: NodeSet, tasks: Iterable[Task], now: dt.datetime, pipeline: Pipeline | None = None
) -> Plan:
    """Place ``tasks`` on ``nodes`` (see ``Planner.plan``)."""
    return Planner(pipeline).plan(nodes, tasks, now)
