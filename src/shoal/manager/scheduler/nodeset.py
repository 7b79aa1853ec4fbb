"""The scheduler's picture of the cluster: every node with the tasks that occupy it."""

from collections.abc import Iterable, Iterator

from shoal.api.objects import Node, Task
from shoal.api.types import TaskState
from shoal.manager.scheduler.nodeinfo import NodeInfo


def occupies_node(task: Task) -> bool:
    """The task holds a place on its node: assigned there and not yet stopped."""
    return bool(task.NodeID) and TaskState.ASSIGNED <= task.Status.State <= TaskState.RUNNING


class NodeSet:
    def __init__(self, nodes: Iterable[NodeInfo] = ()) -> None:
        self._nodes: dict[str, NodeInfo] = {n.id: n for n in nodes}

    @classmethod
    def build(cls, nodes: Iterable[Node], tasks: Iterable[Task]) -> "NodeSet":
        """From a snapshot of the store: tasks that do not occupy a node are left out."""
        by_node: dict[str, list[Task]] = {}
        for t in tasks:
            if occupies_node(t):
                by_node.setdefault(t.NodeID or "", []).append(t)
        return cls(NodeInfo(n, by_node.get(n.ID, ())) for n in nodes)

    def get(self, node_id: str | None) -> NodeInfo | None:
        return self._nodes.get(node_id) if node_id else None

    def add_or_update(self, node: Node) -> NodeInfo:
        info = self._nodes.get(node.ID)
        if info is None:
            info = self._nodes[node.ID] = NodeInfo(node)
        else:
            info.set_node(node)
        return info

    def remove(self, node_id: str) -> None:
        self._nodes.pop(node_id, None)

    def __iter__(self) -> Iterator[NodeInfo]:
        return iter(self._nodes.values())

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._nodes
