"""Placement preferences (``spread=node.labels.zone``): tasks spread evenly over the values of
a label first, then over the nodes within each value, as Swarm's decision tree does.

Without preferences the tree is a single leaf holding every eligible node. Each leaf keeps its
nodes in a heap ordered by the ranking (fewest tasks of this service, then fewest tasks in
all), so picking the best node costs a heap operation, not a scan of the nodes.
"""

import heapq
from collections.abc import Iterable

from shoal.manager.constraint import ENGINE_LABEL_PREFIX, NODE_LABEL_PREFIX
from shoal.manager.scheduler.nodeinfo import NodeInfo

HeapEntry = tuple[int, int, str, NodeInfo]


def rank(node: NodeInfo, service_id: str) -> HeapEntry:
    """Smaller is better: fewest tasks of the service, then fewest tasks in all; the node ID
    settles ties so the choice is reproducible."""
    return (node.service_count(service_id), node.active_total, node.id, node)


def spread_descriptors(preferences: list[dict] | None) -> list[str]:
    """The label each ``Spread`` preference spreads over (other kinds are ignored, as Swarm
    ignores them)."""
    result = []
    for pref in preferences or []:
        spread = pref.get("Spread")
        descriptor = spread.get("SpreadDescriptor") if isinstance(spread, dict) else None
        if isinstance(descriptor, str) and _label_of(descriptor) is not None:
            result.append(descriptor)
    return result


def _label_of(descriptor: str) -> tuple[str, str] | None:
    lower = descriptor.lower()
    for prefix, kind in ((NODE_LABEL_PREFIX, "node"), (ENGINE_LABEL_PREFIX, "engine")):
        if lower.startswith(prefix) and len(descriptor) > len(prefix):
            return kind, descriptor[len(prefix) :]
    return None


def _value(node: NodeInfo, descriptor: str) -> str:
    # A node without the label lands in the "" branch, so labelled and unlabelled nodes share
    # the tree's shape (as in Swarm).
    label = _label_of(descriptor)
    assert label is not None
    kind, key = label
    if kind == "node":
        return node.node.Spec.Labels.get(key, "")
    desc = node.node.Description
    labels = (desc.Engine.Labels if desc is not None else None) or {}
    return labels.get(key, "")


class Branch:
    """A subtree: the service's tasks on all its nodes, and how many of its nodes can still
    take one."""

    __slots__ = ("alive", "children", "heap", "tasks")

    def __init__(self) -> None:
        self.tasks = 0
        self.alive = 0
        self.children: dict[str, Branch] | None = None
        self.heap: list[HeapEntry] = []


class SpreadTree:
    def __init__(
        self,
        all_nodes: Iterable[NodeInfo],
        eligible: list[NodeInfo],
        service_id: str,
        descriptors: list[str],
    ) -> None:
        """``eligible``: the nodes that pass the filters; ``all_nodes`` (every node) only
        count the service's tasks in each branch."""
        self.service_id = service_id
        self.root = Branch()
        if not descriptors:
            # One leaf: only the eligible nodes matter.
            self.root.heap = [rank(n, service_id) for n in eligible]
            self.root.alive = len(self.root.heap)
            heapq.heapify(self.root.heap)
            return
        eligible_ids = {n.id for n in eligible}
        for node in all_nodes:
            count = node.service_count(service_id)
            path = [self.root]
            branch = self.root
            for descriptor in descriptors:
                if branch.children is None:
                    branch.children = {}
                value = _value(node, descriptor)
                child = branch.children.get(value)
                if child is None:
                    child = branch.children[value] = Branch()
                branch = child
                path.append(branch)
            for b in path:
                b.tasks += count
            if node.id in eligible_ids:
                branch.heap.append(rank(node, service_id))
                for b in path:
                    b.alive += 1
        self._sort(self.root)

    def _sort(self, branch: Branch) -> None:
        heapq.heapify(branch.heap)
        if branch.children is not None:
            # Equal branches are taken in the order of their values, so results repeat.
            branch.children = dict(sorted(branch.children.items()))
            for child in branch.children.values():
                self._sort(child)

    def pop(self) -> tuple[NodeInfo, list[Branch]] | None:
        """Take the best node of the emptiest branch with room; None if no node has room.
        The node must be given back with ``push`` or ``drop``."""
        branch = self.root
        path = [branch]
        while branch.children is not None:
            best: Branch | None = None
            for child in branch.children.values():
                if child.alive and (best is None or child.tasks < best.tasks):
                    best = child
            if best is None:
                return None
            branch = best
            path.append(branch)
        if not branch.heap:
            return None
        node = heapq.heappop(branch.heap)[3]
        return node, path

    def push(self, node: NodeInfo, path: list[Branch]) -> None:
        """Give a node back after placing a task on it: it can take more."""
        for b in path:
            b.tasks += 1
        heapq.heappush(path[-1].heap, rank(node, self.service_id))

    def drop(self, node: NodeInfo, path: list[Branch], placed: bool) -> None:
        """Give a node back that can take no more (``placed``: a task went there first)."""
        for b in path:
            b.alive -= 1
            if placed:
                b.tasks += 1
