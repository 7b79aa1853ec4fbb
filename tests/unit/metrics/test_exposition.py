"""What a node's /metrics shows, parsed back with prometheus_client's own parser: Swarm's
names, types, help strings and labels (as a Docker 20.10 dockerd shows them), shoal's own
figures, and the endpoint itself."""

from types import SimpleNamespace

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from shoal.api.ids import new_id
from shoal.api.objects import Node, NodeStatus, Task, TaskStatus
from shoal.api.specs import NodeSpec
from shoal.api.types import NodeRole, NodeState, TaskState
from shoal.daemon.metrics import NodeCollector, metrics_app, parse_metrics_addr
from shoal.engineapi.request_metrics import request_metrics
from shoal.manager.metrics import ManagerCollector
from shoal.metrics import INSTRUMENTS
from shoal.store import MemoryStore

# What dockerd 20.10 (swarm manager, --metrics-addr) exposes under swarm_: name -> type,
# help and labels. shoal leaves out swarm_store_read_tx_latency_seconds,
# swarm_store_lookup_latency_seconds and swarm_store_memory_store_lock_duration_seconds
# (reads are plain dictionary lookups in the event loop: timing each would cost more than
# the read).
SWARM = {
    "swarm_dispatcher_scheduling_delay_seconds": (
        "histogram",
        "Scheduling delay is the time a task takes to go from NEW to RUNNING state.",
        set(),
    ),
    "swarm_manager_configs_total": (
        "gauge",
        "The number of configs in the cluster object store",
        set(),
    ),
    "swarm_manager_leader": ("gauge", "Indicates if this manager node is a leader", set()),
    "swarm_manager_networks_total": (
        "gauge",
        "The number of networks in the cluster object store",
        set(),
    ),
    "swarm_manager_nodes": ("gauge", "The number of nodes", {"state"}),
    "swarm_manager_secrets_total": (
        "gauge",
        "The number of secrets in the cluster object store",
        set(),
    ),
    "swarm_manager_services_total": (
        "gauge",
        "The number of services in the cluster object store",
        set(),
    ),
    "swarm_manager_tasks_total": (
        "gauge",
        "The number of tasks in the cluster object store",
        {"state"},
    ),
    "swarm_node_info": ("gauge", "Information related to the swarm", {"swarm_id", "node_id"}),
    "swarm_node_manager": ("gauge", "Whether this node is a manager or not", set()),
    "swarm_raft_snapshot_latency_seconds": ("histogram", "Raft snapshot create latency.", set()),
    "swarm_raft_transaction_latency_seconds": ("histogram", "Raft transaction latency.", set()),
    "swarm_store_batch_latency_seconds": ("histogram", "Raft store batch latency.", set()),
    "swarm_store_write_tx_latency_seconds": ("histogram", "Raft store write tx latency.", set()),
}


def scrape(registry: CollectorRegistry) -> dict:
    text = generate_latest(registry).decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def value(families: dict, name: str, **labels: str) -> float:
    family = families[name]
    found = [s.value for s in family.samples if s.name == name and s.labels == labels]
    assert len(found) == 1, (name, labels, family.samples)
    return found[0]


def fake_daemon(manager: object = None, state: object = None) -> SimpleNamespace:
    return SimpleNamespace(manager=manager, state=state)


def fake_manager(store: MemoryStore, leader: bool) -> SimpleNamespace:
    """What the collector reads of a manager, without raft running (its figures are
    tested end to end)."""
    return SimpleNamespace(
        store=store, is_leader=leader, replica=SimpleNamespace(node=None), servicers=[]
    )


def registry_for(daemon: SimpleNamespace) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(INSTRUMENTS)
    registry.register(ManagerCollector(lambda: daemon.manager))
    registry.register(NodeCollector(daemon))  # type: ignore[arg-type]
    return registry


def test_swarm_names_types_help_and_labels_are_dockerds():
    state = SimpleNamespace(Role=NodeRole.MANAGER, ClusterID="c1", NodeID="n1")
    families = scrape(registry_for(fake_daemon(state=state)))
    for name, (kind, help_text, labels) in SWARM.items():
        family = families[name]
        assert (family.type, family.documentation) == (kind, help_text), name
        sample_labels = {k for s in family.samples for k in s.labels} - {"le"}
        assert sample_labels == labels, name


def test_a_worker_reports_the_managers_figures_at_zero_as_dockerd_does():
    state = SimpleNamespace(Role=NodeRole.WORKER, ClusterID="c1", NodeID="n1")
    families = scrape(registry_for(fake_daemon(state=state)))
    assert value(families, "swarm_manager_leader") == 0
    assert value(families, "swarm_node_manager") == 0
    assert value(families, "swarm_node_info", swarm_id="c1", node_id="n1") == 1
    states = {s.labels["state"]: s.value for s in families["swarm_manager_tasks_total"].samples}
    assert set(states) == {s.value for s in TaskState} and not any(states.values())
    assert {s.labels["state"] for s in families["swarm_manager_nodes"].samples} == {
        "unknown",
        "down",
        "ready",
        "disconnected",
    }


def test_not_in_a_swarm_has_no_node_info():
    families = scrape(registry_for(fake_daemon()))
    assert families["swarm_node_info"].samples == []
    assert value(families, "swarm_node_manager") == 0


async def test_a_managers_counts_follow_its_store():
    store = MemoryStore()
    daemon = fake_daemon(manager=fake_manager(store, leader=True))
    registry = registry_for(daemon)
    nodes = [
        Node(ID=new_id(), Role=role, Spec=NodeSpec(Role=role), Status=NodeStatus(State=state))
        for role, state in (
            (NodeRole.MANAGER, NodeState.READY),
            (NodeRole.WORKER, NodeState.READY),
            (NodeRole.WORKER, NodeState.DOWN),
        )
    ]
    tasks = [
        Task(ID=new_id(), ServiceID="s", Status=TaskStatus(State=TaskState.RUNNING))
        for _ in range(4)
    ]
    await store.update(lambda tx: [tx.create(o) for o in (*nodes, *tasks)])
    families = scrape(registry)
    assert value(families, "swarm_manager_leader") == 1
    assert value(families, "swarm_manager_nodes", state="ready") == 2
    assert value(families, "swarm_manager_nodes", state="down") == 1
    assert value(families, "shoal_manager_nodes_by_role", role="worker") == 2
    assert value(families, "swarm_manager_tasks_total", state="running") == 4

    def stop_one(tx):
        t = tx.get(Task, tasks[0].ID).clone()
        t.Status = TaskStatus(State=TaskState.SHUTDOWN)
        tx.update(t)

    await store.update(stop_one)
    families = scrape(registry)  # no await in between: the scrape itself catches up
    assert value(families, "swarm_manager_tasks_total", state="running") == 3
    assert value(families, "swarm_manager_tasks_total", state="shutdown") == 1

    # Demoted: no manager, the counts stop following and read zero.
    daemon.manager = None
    families = scrape(registry)
    assert value(families, "swarm_manager_tasks_total", state="running") == 0
    assert value(families, "swarm_manager_leader") == 0
    store.close()


async def test_store_writes_are_timed():
    store = MemoryStore()
    before = INSTRUMENTS.get_sample_value("swarm_store_write_tx_latency_seconds_count") or 0
    batches = INSTRUMENTS.get_sample_value("swarm_store_batch_latency_seconds_count") or 0
    await store.update(lambda tx: tx.create(Task(ID=new_id(), ServiceID="s")))
    await store.batch([lambda tx: tx.create(Task(ID=new_id(), ServiceID="s"))])
    assert INSTRUMENTS.get_sample_value("swarm_store_write_tx_latency_seconds_count") == before + 1
    assert INSTRUMENTS.get_sample_value("swarm_store_batch_latency_seconds_count") == batches + 1
    store.close()


@pytest.mark.parametrize(
    ("addr", "parsed"),
    [
        ("127.0.0.1:9323", ("127.0.0.1", 9323)),
        ("0.0.0.0:9323", ("0.0.0.0", 9323)),
        ("[::1]:9323", ("::1", 9323)),
        ("localhost:1", ("localhost", 1)),
    ],
)
def test_metrics_addr(addr, parsed):
    assert parse_metrics_addr(addr) == parsed


@pytest.mark.parametrize("addr", ["9323", ":9323", "host:", "host:port", "host:70000", "h:0"])
def test_bad_metrics_addr(addr):
    with pytest.raises(ValueError, match="want HOST:PORT"):
        parse_metrics_addr(addr)


async def test_the_endpoint_serves_prometheus_text_at_metrics_only():
    state = SimpleNamespace(Role=NodeRole.MANAGER, ClusterID="c1", NodeID="n1")
    app = metrics_app(fake_daemon(state=state))  # type: ignore[arg-type]
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/metrics")
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        names = {f.name for f in text_string_to_metric_families(await resp.text())}
        assert set(SWARM) <= names
        assert "process_resident_memory_bytes" in names  # the process', as dockerd has
        assert (await client.get("/other")).status == 404


async def test_a_scrape_restricted_to_some_names_serves_those_only():
    store = MemoryStore()
    state = SimpleNamespace(Role=NodeRole.MANAGER, ClusterID="c1", NodeID="n1")
    daemon = fake_daemon(fake_manager(store, leader=True), state)
    app = metrics_app(daemon)  # type: ignore[arg-type]
    async with TestClient(TestServer(app)) as client:
        # As Prometheus' client libraries take it: the manager's (known only by collecting),
        # an instrument's, and the process collector's.
        params = [
            ("name[]", "swarm_manager_leader"),
            ("name[]", "swarm_store_write_tx_latency_seconds_count"),
            ("name[]", "process_resident_memory_bytes"),
        ]
        resp = await client.get("/metrics", params=params)
        assert resp.status == 200
        families = {f.name: f for f in text_string_to_metric_families(await resp.text())}
        assert set(families) == {
            "swarm_manager_leader",
            "swarm_store_write_tx_latency_seconds",
            "process_resident_memory_bytes",
        }
        assert [s.value for s in families["swarm_manager_leader"].samples] == [1.0]


async def test_api_requests_are_counted_by_route_not_by_path():
    async def ok(_request: web.Request) -> web.Response:
        return web.json_response({})

    async def missing(_request: web.Request) -> web.Response:
        raise web.HTTPNotFound()

    app = web.Application(middlewares=[request_metrics])
    app.router.add_get(r"/{api_version:v[0-9]+\.[0-9]+}/services/{id}", ok)
    app.router.add_get("/services/{id}", ok)
    app.router.add_get("/nodes/{id}", missing)
    app.router.add_route("*", "/{path:.*}", ok)

    def count(method: str, endpoint: str, code: str) -> float:
        labels = {"method": method, "endpoint": endpoint, "code": code}
        return INSTRUMENTS.get_sample_value("shoal_engine_api_requests_total", labels) or 0

    before = count("GET", "/services/{id}", "200")
    passed = count("POST", "engine", "200")
    refused = count("GET", "/nodes/{id}", "404")
    async with TestClient(TestServer(app)) as client:
        for path in ("/v1.41/services/abc", "/services/def", "/v1.47/services/ghi"):
            assert (await client.get(path)).status == 200
        assert (await client.post("/containers/create")).status == 200
        assert (await client.get("/nodes/x")).status == 404
    assert count("GET", "/services/{id}", "200") == before + 3
    assert count("POST", "engine", "200") == passed + 1
    assert count("GET", "/nodes/{id}", "404") == refused + 1


async def test_openmetrics_when_prometheus_asks_for_it():
    """Prometheus asks for OpenMetrics first; what it gets must parse as that too."""
    from prometheus_client.openmetrics.parser import (
        text_string_to_metric_families as openmetrics_families,
    )

    app = metrics_app(fake_daemon())  # type: ignore[arg-type]
    async with TestClient(TestServer(app)) as client:
        accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
        resp = await client.get("/metrics", headers={"Accept": accept})
        assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
        names = {f.name for f in openmetrics_families(await resp.text())}
        assert {"swarm_manager_tasks_total", "swarm_manager_leader"} <= names
