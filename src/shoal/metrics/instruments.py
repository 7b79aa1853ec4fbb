"""The instruments the running code records into, one set per process (as Go's metrics are
registered once per dockerd). Names, types and help strings of the ``swarm_*`` ones are
Swarm's (swarmkit registers them through docker/go-metrics: a "timer" is a histogram in
seconds with Prometheus' default buckets).

Recording costs about a microsecond (a lock and a bucket search), so hooks sit on paths that
run per transaction, per proposal, per request or per connection, never per object in a loop.
"""

import time

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)

# No ``*_created`` series beside each counter and histogram: dockerd exposes none, and they
# double what a scrape carries for a value no dashboard of Swarm's reads.
disable_created_metrics()

# Everything below registers here, not in prometheus_client's global registry: a node's
# /metrics serves this registry beside its own collectors, and nothing else in the process
# (a library registering its own) ends up in it unasked.
INSTRUMENTS = CollectorRegistry(auto_describe=True)

# Go's prometheus.DefBuckets, which swarmkit's timers use (prometheus_client's own default
# has more buckets: dashboards built for dockerd expect these "le" values).
GO_DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _timer(name: str, help_text: str, labels: tuple[str, ...] = ()) -> Histogram:
    return Histogram(name, help_text, labels, buckets=GO_DEFAULT_BUCKETS, registry=INSTRUMENTS)


# --- Swarm's (swarmkit manager/state/raft, manager/state/store, manager/dispatcher) ---------

RAFT_TRANSACTION_LATENCY = _timer(
    "swarm_raft_transaction_latency_seconds", "Raft transaction latency."
)
RAFT_SNAPSHOT_LATENCY = _timer(
    "swarm_raft_snapshot_latency_seconds", "Raft snapshot create latency."
)
STORE_WRITE_TX_LATENCY = _timer(
    "swarm_store_write_tx_latency_seconds", "Raft store write tx latency."
)
STORE_BATCH_LATENCY = _timer("swarm_store_batch_latency_seconds", "Raft store batch latency.")
DISPATCHER_SCHEDULING_DELAY = _timer(
    "swarm_dispatcher_scheduling_delay_seconds",
    "Scheduling delay is the time a task takes to go from NEW to RUNNING state.",
)

# --- shoal's own, where Swarm has none ------------------------------------------------------

RAFT_PROPOSALS = Counter(
    "shoal_raft_proposals",
    "Store transactions proposed to raft by this manager, by result (committed or failed).",
    ["result"],
    registry=INSTRUMENTS,
)
RAFT_SNAPSHOT_TIME = Gauge(
    "shoal_raft_snapshot_last_timestamp_seconds",
    "When this manager last created a raft snapshot (seconds since the epoch).",
    registry=INSTRUMENTS,
)
SCHEDULER_DECISIONS = Counter(
    "shoal_scheduler_decisions",
    "Pending tasks the scheduler decided on, by result: assigned to a node, or unplaced "
    "(no node fits; the task waits with its reason).",
    ["result"],
    registry=INSTRUMENTS,
)
SCHEDULER_PASS_LATENCY = _timer(
    "shoal_scheduler_pass_latency_seconds",
    "Time the scheduler takes to decide on a batch of pending tasks and write its decisions.",
)
AGENT_HEARTBEAT_LATENCY = _timer(
    "shoal_agent_heartbeat_latency_seconds",
    "Round trip of this node's heartbeats to its manager's dispatcher.",
)
AGENT_SESSIONS_ENDED = Counter(
    "shoal_agent_sessions_ended",
    "Sessions of this node with a manager's dispatcher that ended, by what ended them: the "
    "gRPC status of the call that failed (unavailable, not_found...), heartbeat (a heartbeat "
    "went unanswered for three periods), closed (the dispatcher ended it), description (the "
    "node's description changed) or error.",
    ["cause"],
    registry=INSTRUMENTS,
)
DISPATCHER_NODES_DOWN = Counter(
    "shoal_dispatcher_nodes_down",
    "Nodes this manager's dispatcher marked down, by reason: heartbeat (nothing heard for "
    "three heartbeat periods) or session (its connection broke and no new session came "
    "within the reconnect grace).",
    ["reason"],
    registry=INSTRUMENTS,
)
DISPATCHER_STATUS_REPORTS = Counter(
    "shoal_dispatcher_status_reports",
    "What agents reported to this manager's dispatcher about their tasks: calls (one "
    "UpdateTaskStatus each) and the task statuses they carried (updates).",
    ["unit"],
    registry=INSTRUMENTS,
)
API_REQUESTS = Counter(
    "shoal_engine_api_requests",
    "Engine API requests answered, by method, endpoint (the route, without the API version) "
    "and status code.",
    ["method", "endpoint", "code"],
    registry=INSTRUMENTS,
)
API_REQUEST_LATENCY = _timer(
    "shoal_engine_api_request_duration_seconds",
    "Time to answer an Engine API request (a stream: until it ends), by method and endpoint.",
    ("method", "endpoint"),
)
MESH_CONNECTIONS = Counter(
    "shoal_mesh_connections",
    "Connections (UDP: flows) the routing mesh's userspace data path accepted on published "
    "ports, by protocol.",
    ["protocol"],
    registry=INSTRUMENTS,
)
MESH_ACTIVE_CONNECTIONS = Gauge(
    "shoal_mesh_active_connections",
    "Connections (UDP: flows) the routing mesh's userspace data path holds open now, by protocol.",
    ["protocol"],
    registry=INSTRUMENTS,
)
for _protocol in ("tcp", "udp"):  # present from the start, at zero, as Swarm's gauges are
    MESH_CONNECTIONS.labels(_protocol)
    MESH_ACTIVE_CONNECTIONS.labels(_protocol)
for _result in ("committed", "failed"):
    RAFT_PROPOSALS.labels(_result)
for _reason in ("heartbeat", "session"):
    DISPATCHER_NODES_DOWN.labels(_reason)
for _result in ("assigned", "unplaced"):
    SCHEDULER_DECISIONS.labels(_result)


def stopwatch() -> float:
    """A start for ``since``. Latencies are measured on the process' performance counter, not
    on the injectable clock: they measure real work, also under a test's fake clock."""
    return time.perf_counter()


def since(started: float) -> float:
    """Seconds since ``stopwatch()`` returned ``started``."""
    return time.perf_counter() - started
