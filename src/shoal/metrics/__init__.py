"""Prometheus metrics: the process-wide instruments that the hot paths record into
(latencies, counters), named after Swarm's own where Swarm has one (``swarm_raft_*``,
``swarm_store_*``, ``swarm_dispatcher_*``) and ``shoal_*`` where it has none.

This package sits at the bottom of the layers so that any part may record; what is read from
a manager's store or raft at scrape time is collected by ``shoal.manager.metrics``, and the
``/metrics`` endpoint (``shoal daemon --metrics-addr``) is assembled by ``shoal.daemon``.
"""

from shoal.metrics.instruments import (
    AGENT_HEARTBEAT_LATENCY,
    AGENT_SESSIONS_ENDED,
    API_REQUEST_LATENCY,
    API_REQUESTS,
    DISPATCHER_NODES_DOWN,
    DISPATCHER_SCHEDULING_DELAY,
    DISPATCHER_STATUS_REPORTS,
    INSTRUMENTS,
    MESH_ACTIVE_CONNECTIONS,
    MESH_CONNECTIONS,
    RAFT_PROPOSALS,
    RAFT_SNAPSHOT_LATENCY,
    RAFT_SNAPSHOT_TIME,
    RAFT_TRANSACTION_LATENCY,
    SCHEDULER_DECISIONS,
    SCHEDULER_PASS_LATENCY,
    STORE_BATCH_LATENCY,
    STORE_WRITE_TX_LATENCY,
    since,
    stopwatch,
)

__all__ = [
    "AGENT_HEARTBEAT_LATENCY",
    "AGENT_SESSIONS_ENDED",
    "API_REQUESTS",
    "API_REQUEST_LATENCY",
    "DISPATCHER_NODES_DOWN",
    "DISPATCHER_SCHEDULING_DELAY",
    "DISPATCHER_STATUS_REPORTS",
    "INSTRUMENTS",
    "MESH_ACTIVE_CONNECTIONS",
    "MESH_CONNECTIONS",
    "RAFT_PROPOSALS",
    "RAFT_SNAPSHOT_LATENCY",
    "RAFT_SNAPSHOT_TIME",
    "RAFT_TRANSACTION_LATENCY",
    "SCHEDULER_DECISIONS",
    "SCHEDULER_PASS_LATENCY",
    "STORE_BATCH_LATENCY",
    "STORE_WRITE_TX_LATENCY",
    "since",
    "stopwatch",
]
