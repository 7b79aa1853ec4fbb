"""Runs a task's applicable filters against nodes and explains the failures as Swarm does."""

import itertools
from collections.abc import Iterable, Sequence

from shoal.api.objects import Task
from shoal.manager.scheduler.filters import Filter, default_filters
from shoal.manager.scheduler.nodeinfo import NodeInfo

_verdict_keys = itertools.count(1)  # shared, so two pipelines never use the same key

# A node remembers static verdicts for this many kinds of task before starting afresh.
MAX_VERDICTS_PER_NODE = 256


# The static verdict of a node that passes every static filter.
_PASS = 1 << 30


class Pipeline:
    def __init__(self, filters: Sequence[Filter] | None = None) -> None:
        self.filters: list[Filter] = list(filters) if filters is not None else default_filters()
        # Enabled filters as (position in ``filters``, filter): positions, unlike places in
        # the enabled list, mean the same thing for every task.
        self._static: list[tuple[int, Filter]] = []
        self._dynamic: list[tuple[int, Filter]] = []
        self._key = 0
        self._keys: dict[tuple, int] = {}

    def set_task(self, task: Task) -> None:
        """Prepare every filter for ``task``; only those that apply are checked."""
        enabled = [(i, f) for i, f in enumerate(self.filters) if f.set_task(task)]
        self._static = [(i, f) for i, f in enabled if f.static]
        self._dynamic = [(i, f) for i, f in enabled if not f.static]
        # A small int stands for what the static filters were set to, so the lookup on each
        # node hashes an int rather than, say, a list of constraints.
        key = tuple((i, f.key()) for i, f in self._static)
        found = self._keys.get(key)
        if found is None:
            if len(self._keys) >= MAX_VERDICTS_PER_NODE:
                self._keys.clear()  # a fresh key is never one a node has seen
            found = self._keys[key] = next(_verdict_keys)
        self._key = found

    def first_failure(self, node: NodeInfo) -> Filter | None:
        """The first filter ``node`` fails, in pipeline order, or None if it can take the task.

        The static filters' verdict is remembered on the node (until the node changes), so
        placing many batches over many nodes mostly checks only what tasks change: resources,
        ports, replicas per node."""
        verdict = node.verdicts.get(self._key)
        if verdict is None:
            verdict = _PASS
            for i, f in self._static:
                if not f.check(node):
                    verdict = i
                    break
            if len(node.verdicts) >= MAX_VERDICTS_PER_NODE:
                node.verdicts.clear()
            node.verdicts[self._key] = verdict
        for i, f in self._dynamic:
            if i > verdict:
                break
            if not f.check(node):
                return f
        return None if verdict == _PASS else self.filters[verdict]

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
