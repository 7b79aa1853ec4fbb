"""What a manager exposes to Prometheus at scrape time: counts of the cluster's objects (kept
from the store's watch), leadership, raft's progress and the dispatcher's sessions, named as
swarmkit's manager/metrics collector and manager names them where Swarm has them."""

from shoal.manager.metrics.cluster_counts import ClusterCounts
from shoal.manager.metrics.collector import ManagerCollector, cluster_families

__all__ = ["ClusterCounts", "ManagerCollector", "cluster_families"]
