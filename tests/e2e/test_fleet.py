"""A fleet of simulated nodes against a real manager daemon: 50 workers, each a real agent
(its own certificate and session) whose tasks are simulated, 2,000 tasks. Every task runs;
when a tenth of the nodes dies, the managers mark them down and run their tasks on the
others; a partitioned node goes down too and comes back once its link heals."""

import json
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.e2e.fleet import FleetProcess
from tests.e2e.harness import LocalCluster, Node, wait_for

pytestmark = pytest.mark.e2e

NODES = 50
SERVICES = 4
REPLICAS = 500
TASKS = SERVICES * REPLICAS


def running_by_node(manager: Node) -> Counter[str]:
    """Running tasks meant to run, per node, as the managers see them."""
    filters = quote(json.dumps({"desired-state": ["running"]}))
    tasks = manager.get(f"/tasks?filters={filters}")
    return Counter(t.get("NodeID", "") for t in tasks if t["Status"]["State"] == "running")


def node_states(manager: Node) -> dict[str, str]:
    return {n["ID"]: n["Status"]["State"] for n in manager.get("/nodes")}


def test_fleet_runs_every_task_and_replaces_lost_nodes(short_tmp: Path) -> None:
    cluster = LocalCluster(short_tmp)
    fleet: FleetProcess | None = None
    try:
        manager = cluster.add(
            "manager1", ["--runtime", "process", "--engine-host", "none", "--no-overlay"]
        )
        # Tasks go to the simulated workers only; a 2 s heartbeat keeps detection short
        # (1 s made nodes miss heartbeats when the machine is loaded).
        cluster.init("--availability", "drain", "--dispatcher-heartbeat", "2s")
        token = manager.cli("swarm", "join-token", "-q", "worker").stdout.strip()
        fleet = FleetProcess(
            [manager.addr],
            token,
            "sim",
            short_tmp / "fleet.log",
            ("--nodes", str(NODES), "--start-latency", "0.05-0.2", "--seed", "1"),
        )
        wait_for(
            lambda: list(node_states(manager).values()).count("ready") == NODES + 1,
            what="every simulated node ready",
        )

        for i in range(SERVICES):
            manager.cli(
                "service", "create", "-d", "--name", f"s{i}", "--replicas", str(REPLICAS), "app"
            )
        placed = wait_for(
            lambda: (c := running_by_node(manager)) and sum(c.values()) == TASKS and c,
            timeout=120,
            what=f"{TASKS} tasks running",
        )
        assert cluster.node_id(manager) not in placed  # drained: all on the simulated nodes
        # The agents agree. (Tasks shut down meanwhile may linger on them until removed: a
        # node that missed heartbeats on a loaded machine had its tasks replaced.)
        assert fleet.stats()["tasks"]["running"] == TASKS

        killed = {n["id"] for n in fleet.kill(NODES // 10)}
        assert len(killed) == NODES // 10
        wait_for(
            lambda: all(node_states(manager)[n] == "down" for n in killed),
            what="killed nodes down",
        )
        # Until the orchestrator has replaced them, the lost nodes' tasks are still running
        # and meant to run in the store (as in Docker): the count is whole at once, for a
        # moment, with them in it.
        replaced = wait_for(
            lambda: (
                (c := running_by_node(manager))
                and sum(c.values()) == TASKS
                and not killed & set(c)
                and c
            ),
            timeout=120,
            what="every task running again, none on a lost node",
        )
        assert not killed & set(replaced)
        assert fleet.stats()["tasks"].get("running") == TASKS

        # A partitioned node (connection open, nothing passing) is down too, and is ready
        # again once its link heals.
        cut = {n["id"] for n in fleet.partition(1)}
        wait_for(lambda: all(node_states(manager)[n] == "down" for n in cut), what="cut down")
        fleet.heal()
        wait_for(lambda: all(node_states(manager)[n] == "ready" for n in cut), what="healed")
    finally:
        if fleet is not None:
            fleet.close()
        cluster.close()
