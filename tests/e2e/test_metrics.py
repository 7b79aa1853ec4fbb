"""``shoal daemon --metrics-addr``: every manager's /metrics is Prometheus text (parsed with
prometheus_client's own parser), and its figures follow the cluster: task counts follow a
scale on every manager, and when the leader is killed the survivors' swarm_manager_leader,
raft term and node counts follow the election. Addresses 127.0.45.x."""

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.harness import Node, free_port, kill_tasks_under, wait_for

pytestmark = pytest.mark.e2e

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(metrics_addr: str) -> Samples:
    """Every sample of the node's /metrics, by name and labels; the parser raises on
    anything that is not valid Prometheus text."""
    with urllib.request.urlopen(f"http://{metrics_addr}/metrics", timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = resp.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


class MetricsNode:
    def __init__(self, node: Node, metrics_addr: str) -> None:
        self.node = node
        self.metrics_addr = metrics_addr

    def scrape(self) -> Samples:
        return scrape(self.metrics_addr)

    def running(self) -> float:
        return value(self.scrape(), "swarm_manager_tasks_total", state="running")


@pytest.fixture
def managers(short_tmp: Path) -> Iterator[list[MetricsNode]]:
    nodes: list[MetricsNode] = []
    try:
        for i in (1, 2, 3):
            host = f"127.0.45.{i}"
            addr = f"{host}:{free_port(host)}"
            node = Node(
                name=f"m{i}",
                host=host,
                root=short_tmp / f"m{i}",
                extra_args=["--metrics-addr", addr],
            )
            nodes.append(MetricsNode(node, addr))
            node.start()
        m1 = nodes[0].node
        m1.cli("swarm", "init", "--advertise-addr", m1.host, "--dispatcher-heartbeat", "1s")
        token = m1.cli("swarm", "join-token", "-q", "manager").stdout.strip()
        for m in nodes[1:]:
            m.node.cli("swarm", "join", "--token", token, m1.addr)
        yield nodes
    finally:
        for m in nodes:
            m.node.stop()
        kill_tasks_under(short_tmp)  # tasks outlive their daemon by design


def test_metrics_follow_a_scale_and_a_leader_change(managers: list[MetricsNode]):
    def one_leader() -> MetricsNode | None:
        leading = [m for m in managers if value(m.scrape(), "swarm_manager_leader") == 1]
        return leading[0] if len(leading) == 1 else None

    leader = wait_for(one_leader, what="one manager reporting swarm_manager_leader 1")
    wait_for(
        lambda: all(value(m.scrape(), "swarm_manager_nodes", state="ready") == 3 for m in managers),
        what="every manager counting three ready nodes",
    )
    for m in managers:
        samples = m.scrape()
        assert value(samples, "swarm_node_manager") == 1
        assert value(samples, "shoal_manager_nodes_by_role", role="manager") == 3
        assert value(samples, "shoal_raft_members") == 3
        assert value(samples, "shoal_raft_stand_in_heartbeats_total") >= 0  # exported
        for reason in ("heartbeat", "session"):
            assert value(samples, "shoal_dispatcher_nodes_down_total", reason=reason) == 0

    managers[1].node.process_service("--name", "web", "--replicas", "2", "sleep", "3600")
    wait_for(
        lambda: all(m.running() == 2 for m in managers), what="2 running tasks on every manager"
    )
    managers[2].node.cli("service", "scale", "-d", "web=5")
    wait_for(
        lambda: all(m.running() == 5 for m in managers), what="5 running tasks on every manager"
    )
    # Asked again: under load an election may have moved the lead since the first look.
    leader = wait_for(one_leader, what="one manager reporting swarm_manager_leader 1")
    samples = leader.scrape()
    assert value(samples, "swarm_manager_services_total") == 1
    assert value(samples, "shoal_scheduler_decisions_total", result="assigned") > 0
    assert value(samples, "swarm_dispatcher_scheduling_delay_seconds_count") > 0
    assert value(samples, "shoal_dispatcher_sessions") == 3
    assert value(samples, "swarm_raft_transaction_latency_seconds_count") > 0

    terms = {m.node.name: value(m.scrape(), "shoal_raft_term") for m in managers}
    leader.node.kill()
    survivors = [m for m in managers if m is not leader]

    def new_leader() -> MetricsNode | None:
        scraped = [(m, m.scrape()) for m in survivors]
        leading = [m for m, s in scraped if value(s, "swarm_manager_leader") == 1]
        moved_on = all(
            value(s, "shoal_raft_term") > terms[m.node.name]
            and value(s, "shoal_raft_has_leader") == 1
            for m, s in scraped
        )
        return leading[0] if len(leading) == 1 and moved_on else None

    wait_for(new_leader, what="one survivor reporting itself leader, in a newer term")
    # The dead manager's node goes down in every survivor's counts (heartbeats of 1 s).
    wait_for(
        lambda: all(
            value(m.scrape(), "swarm_manager_nodes", state="down") == 1
            and value(m.scrape(), "swarm_manager_nodes", state="ready") == 2
            for m in survivors
        ),
        what="the killed manager's node down on both survivors",
    )
