"""The manager's families, built at each scrape from what the manager holds now.

Swarm's names, types, help strings and labels (swarmkit manager/metrics/collector.go and
manager/manager.go; checked against a Docker 20.10 dockerd's /metrics):
``swarm_manager_leader``, ``swarm_manager_nodes{state}``, ``swarm_manager_tasks_total{state}``,
``swarm_manager_{services,networks,secrets,configs}_total``. As on dockerd they are reported on
every node, at zero where the node runs no manager. The rest is shoal's: nodes by role and
availability, raft's term and indexes, the dispatcher's sessions.
"""

from collections.abc import Callable, Iterable, Iterator

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from shoal.manager.dispatcher import Dispatcher
from shoal.manager.manager import Manager
from shoal.manager.metrics.cluster_counts import (
    NODE_AVAILABILITIES,
    NODE_ROLES,
    NODE_STATES,
    TASK_STATES,
    ClusterCounts,
)
from shoal.raft.types import NONE


def _labelled(
    name: str, help_text: str, label: str, values: Iterable[str], counts: dict[str, int]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, help_text, labels=[label])
    for value in values:
        family.add_metric([value], counts.get(value, 0))
    return family


def cluster_families(counts: ClusterCounts | None) -> Iterator[Metric]:
    """The counts of the cluster's objects (all zero without a manager, as on dockerd)."""
    empty: dict[str, int] = {}
    yield _labelled(
        "swarm_manager_nodes",
        "The number of nodes",
        "state",
        NODE_STATES,
        counts.node_states if counts else empty,
    )
    yield _labelled(
        "swarm_manager_tasks_total",
        "The number of tasks in the cluster object store",
        "state",
        TASK_STATES,
        counts.task_states if counts else empty,
    )
    totals = counts.totals if counts else empty
    for kind in ("service", "network", "secret", "config"):
        yield GaugeMetricFamily(
            f"swarm_manager_{kind}s_total",
            f"The number of {kind}s in the cluster object store",
            value=totals.get(kind, 0),
        )
    yield _labelled(
        "shoal_manager_nodes_by_role",
        "The number of nodes by role",
        "role",
        NODE_ROLES,
        counts.node_roles if counts else empty,
    )
    yield _labelled(
        "shoal_manager_nodes_by_availability",
        "The number of nodes by availability",
        "availability",
        NODE_AVAILABILITIES,
        counts.node_availabilities if counts else empty,
    )


class ManagerCollector(Collector):
    """Collects from whichever manager the node runs when scraped (``manager()``; None on a
    worker). Counting starts at the first scrape of a manager, so a node nobody scrapes pays
    nothing."""

    def __init__(self, manager: Callable[[], Manager | None]) -> None:
        self._manager = manager
        self.counts: ClusterCounts | None = None

    def describe(self) -> list[Metric]:
        return []  # families are only known by collecting (the registry must not call us early)

    def collect(self) -> Iterator[Metric]:
        manager = self._manager()
        counts = self._counts_of(manager)
        leading = manager is not None and manager.is_leader
        yield self._gauge(
            "swarm_manager_leader", "Indicates if this manager node is a leader", int(leading)
        )
        yield from cluster_families(counts)
        if manager is not None:
            yield from self._raft(manager)
            yield self._gauge(
                "shoal_dispatcher_sessions",
                "Agent sessions open with this manager's dispatcher (agents keep theirs with "
                "the leader's)",
                sum(len(s.sessions) for s in manager.servicers if isinstance(s, Dispatcher)),
            )

    def _counts_of(self, manager: Manager | None) -> ClusterCounts | None:
        """The counts of this manager's store, started at its first scrape (a node that
        became a manager again has a new store: it gets new counts)."""
        counts = self.counts
        if manager is None:
            if counts is not None:
                self.counts = None
                counts.abandon()
            return None
        if counts is None or counts.store is not manager.store:
            if counts is not None:
                counts.abandon()
            counts = self.counts = ClusterCounts(manager.store)
            counts.start()
        else:
            counts.refresh()
        return counts

    @staticmethod
    def _gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, help_text, value=value)

    def _raft(self, manager: Manager) -> Iterator[Metric]:
        node = manager.replica.node
        core = node.core if node is not None else None
        if core is None:
            return  # raft not started yet (joining), or stopped
        log = core.log
        figures = (
            ("shoal_raft_term", "The raft term this manager is in", core.term),
            (
                "shoal_raft_commit_index",
                "The index of the newest raft log entry this manager knows to be committed",
                log.committed,
            ),
            (
                "shoal_raft_applied_index",
                "The index of the newest raft log entry applied to this manager's store",
                log.applied,
            ),
            (
                "shoal_raft_last_index",
                "The index of the newest entry in this manager's raft log",
                log.last_index(),
            ),
            (
                "shoal_raft_snapshot_index",
                "The index of the newest raft log entry this manager's last snapshot holds (0: "
                "none); a restart restores it, then replays the entries after it",
                log.snapshot.index if log.snapshot is not None else 0,
            ),
            (
                "shoal_raft_log_entries",
                "Entries in this manager's raft log since its last compaction (a snapshot "
                "holds the rest)",
                len(log.entries),
            ),
            (
                "shoal_raft_has_leader",
                "Whether this manager knows of a raft leader (1) or not (0: an election is on, "
                "or quorum is lost)",
                int(core.leader != NONE),
            ),
            ("shoal_raft_members", "Voting members of the raft cluster", len(core.conf.voters)),
        )
        for name, help_text, value in figures:
            yield self._gauge(name, help_text, value)
        stand_in = manager.replica.stand_in
        if stand_in is not None:
            yield CounterMetricFamily(
                "shoal_raft_stand_in_heartbeats",
                "Raft heartbeats a thread sent for this leader while its event loop was held "
                "up (see RaftConfig.stand_in_limit)",
                value=stand_in.beats.sent,
            )
