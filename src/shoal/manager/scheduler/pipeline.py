"""Runs a task's applicable filters against nodes and explains the failures as Swarm does."""

from collections.abc import Iterable, Sequence

from shoal.api.objects import Task
from shoal.manager.scheduler.filters import Filter, default_filters
from shoal.manager.scheduler.nodeinfo import NodeInfo


class Pipeline:
    def __init__(self, filters: Sequence[Filter] | None = None) -> None:
        self.filters: list[Filter] = list(filters) if filters is not None else default_filters()
        self._enabled: list[Filter] = []

    def set_task(self, task: Task) -> None:
        """Prepare every filter for ``task``; only those that apply are checked."""
        self._enabled = [f for f in self.filters if f.set_task(task)]

    def first_failure(self, node: NodeInfo) -> Filter | None:
        """The first filter ``node`` fails, or None if it can take the task."""
        for f in self._enabled:
            if not f.check(node):
                return f
        return None

    def check(self, node: NodeInfo) -> bool:
        return self.first_failure(node) is None

    def explain(self, nodes: Iterable[NodeInfo]) -> str:
        """Why none of ``nodes`` can take the task: for each filter, how many nodes failed it
        first, most failures first, joined by "; " (empty if every node passes)."""
        failures: dict[Filter, int] = {}
        for node in nodes:
            f = self.first_failure(node)
            if f is not None:
                failures[f] = failures.get(f, 0) + 1
        return self.compose(failures)

    def compose(self, failures: dict[Filter, int]) -> str:
        # Swarm sorts by failure count, most first; ties keep the pipeline's order here so the
        # text is stable.
        order = {f: i for i, f in enumerate(self.filters)}
        ranked = sorted(failures.items(), key=lambda item: (-item[1], order.get(item[0], 0)))
        return "; ".join(f.explain(n) for f, n in ranked if n > 0)


def no_suitable_node(explanation: str) -> str:
    """The Err of a task no node can take, worded as Swarm's scheduler words it."""
    return f"no suitable node ({explanation})" if explanation else "no suitable node"
