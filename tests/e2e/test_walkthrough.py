"""The seed tutorials' walkthrough, on a local cluster of 1 manager and 2 workers, each a
separate daemon process, with the process runtime."""

import json
import re
import sys
import urllib.request

import pytest

from tests.e2e.conftest import whoami_args
from tests.e2e.harness import LocalCluster, wait_for

pytestmark = pytest.mark.e2e


def table(text: str) -> list[list[str]]:
    """Rows of a CLI table, split on runs of 2+ spaces (after the header)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return [re.split(r"\s{2,}", ln.strip()) for ln in lines[1:]]


def fetch(host: str, port: int) -> str:
    with urllib.request.urlopen(f"http://{host}:{port}/", timeout=10) as resp:
        return resp.read().decode()


def test_init_join_and_node_ls(short_tmp):
    c = LocalCluster(short_tmp)
    try:
        manager = c.add("manager1")
        out = c.init()
        node_id = c.node_id(manager)
        assert f"Swarm initialized: current node ({node_id}) is now a manager." in out
        assert re.search(
            rf"shoal swarm join --token SWMTKN-1-[0-9a-z]{{50}}-[0-9a-z]{{25}} "
            rf"{re.escape(manager.addr)}",
            out,
        )
        assert "To add a manager to this swarm, run 'shoal swarm join-token manager'" in out

        worker = c.add("worker1")
        token = manager.cli("swarm", "join-token", "-q", "worker").stdout.strip()
        out = worker.cli("swarm", "join", "--token", token, manager.addr).stdout
        assert out.strip() == "This node joined a swarm as a worker."

        rows = wait_for(
            lambda: (
                (r := table(manager.cli("node", "ls").stdout))
                and all("Ready" in row for row in r)
                and len(r) == 2
                and r
            ),
            what="both nodes ready",
        )
        by_name = {next(c for c in row if c in ("manager1", "worker1")): row for row in rows}
        assert "Leader" in by_name["manager1"]
        # The node the CLI talks to is starred: "ID *   manager1 ..."
        [self_line] = [
            ln for ln in manager.cli("node", "ls").stdout.splitlines() if "manager1" in ln
        ]
        assert re.match(rf"{node_id} \*\s+manager1", self_line), self_line

        info = manager.cli("info").stdout
        assert "Swarm: active" in info
        assert "Is Manager: true" in info
        assert "Managers: 1" in info and "Nodes: 2" in info
        assert "Task History Retention Limit: 5" in info
    finally:
        c.close()


def test_replicated_service_lifecycle(cluster: LocalCluster):
    m = cluster.manager
    service_id = m.cli(*whoami_args("web", 3)).stdout.strip()
    assert re.fullmatch(r"[0-9a-z]{25}", service_id)

    running = wait_for(
        lambda: len(cluster.running_tasks("web")) == 3 and cluster.running_tasks("web"),
        what="3 running",
    )
    assert sorted(t["Slot"] for t in running) == [1, 2, 3]
    # Spread: one task per node (fewest tasks of the service first).
    assert len({t["NodeID"] for t in running}) == 3

    ls = m.cli("service", "ls").stdout
    assert re.search(r"web\s+replicated\s+3/3", ls), ls

    ps = m.cli("service", "ps", "web").stdout
    assert len(table(ps)) == 3
    assert "Running" in ps and re.search(r"Running (less than a second|\d+ seconds?) ago", ps)

    pretty = m.cli("service", "inspect", "--pretty", "web").stdout
    assert re.search(r"Name:\s+web", pretty)
    assert re.search(r"Replicas:\s+3", pretty)

    # Each task answers on its node's address, on the host port it was given.
    for t in running:
        [port] = [p["PublishedPort"] for p in t["Shoal"]["RoutingMeshPorts"]]
        node = m.get(f"/nodes/{t['NodeID']}")
        body = fetch(node["Status"]["Addr"], port)
        assert body.startswith(f"web.{t['Slot']}@{node['Description']['Hostname']}")

    # Scale up fills the lowest free slots; scale down keeps a spread.
    assert "web scaled to 5" in m.cli("service", "scale", "-d", "web=5").stdout
    wait_for(lambda: len(cluster.running_tasks("web")) == 5, what="5 running")
    assert sorted(t["Slot"] for t in cluster.running_tasks("web")) == [1, 2, 3, 4, 5]
    m.cli("service", "scale", "-d", "web=2")
    wait_for(lambda: len(cluster.running_tasks("web")) == 2, what="2 running")
    wait_for(
        lambda: all(
            t["Status"]["State"] in ("shutdown", "complete", "running")
            for t in cluster.tasks("web")
        ),
        what="removed tasks stopped",
    )

    # rm leaves nothing behind.
    assert m.cli("service", "rm", "web").stdout.strip() == "web"
    wait_for(lambda: not m.get("/tasks"), what="tasks gone")
    assert "web" not in m.cli("service", "ls").stdout


def test_global_service_follows_nodes(cluster: LocalCluster):
    m = cluster.manager
    m.process_service(
        "--mode",
        "global",
        "--name",
        "agent",
        sys.executable,
        "-c",
        "import time; time.sleep(3600)",
    )
    running = wait_for(
        lambda: len(cluster.running_tasks("agent")) == 3 and cluster.running_tasks("agent"),
        what="one per node",
    )
    assert len({t["NodeID"] for t in running}) == 3
    ls = m.cli("service", "ls").stdout
    assert re.search(r"agent\s+global\s+3/3", ls), ls

    worker2 = cluster.nodes[2]
    m.cli("node", "update", "--availability", "drain", "worker2")
    wid = cluster.node_id(worker2)
    wait_for(
        lambda: not [t for t in cluster.running_tasks("agent") if t["NodeID"] == wid],
        what="global task leaves a drained node",
    )
    m.cli("node", "update", "--availability", "active", "worker2")
    wait_for(lambda: len(cluster.running_tasks("agent")) == 3, what="back on worker2")


def test_drain_moves_tasks_and_history_shows_it(cluster: LocalCluster):
    m = cluster.manager
    m.cli(*whoami_args("web", 3))
    wait_for(lambda: len(cluster.running_tasks("web")) == 3, what="3 running")
    worker1 = cluster.nodes[1]
    wid = cluster.node_id(worker1)
    assert m.cli("node", "update", "--availability", "drain", "worker1").stdout.strip() == "worker1"
    wait_for(
        lambda: (
            len(cluster.running_tasks("web")) == 3
            and all(t["NodeID"] != wid for t in cluster.running_tasks("web"))
        ),
        what="tasks moved off worker1",
    )
    ps = m.cli("service", "ps", "web").stdout
    history = [ln for ln in ps.splitlines() if "\\_ web." in ln]
    assert history and all("Shutdown" in ln and "worker1" in ln for ln in history), ps
    node_ls = m.cli("node", "ls").stdout
    assert re.search(r"worker1\s+Ready\s+Drain", node_ls), node_ls
    pretty = m.cli("node", "inspect", "--pretty", "worker1").stdout
    assert re.search(r"Availability:\s+Drain", pretty)
    m.cli("node", "update", "--availability", "active", "worker1")
    assert re.search(
        r"Availability:\s+Active", m.cli("node", "inspect", "--pretty", "worker1").stdout
    )


def test_leave(cluster: LocalCluster):
    worker2 = cluster.nodes[2]
    assert worker2.cli("swarm", "leave").stdout.strip() == "Node left the swarm."
    assert "Swarm: inactive" in worker2.cli("info").stdout
    out = cluster.manager.cli("swarm", "leave", check=False)
    assert out.returncode != 0
    assert "--force" in out.stderr
    assert json.loads(cluster.manager.cli("node", "ls", "--format", "json").stdout.splitlines()[0])
