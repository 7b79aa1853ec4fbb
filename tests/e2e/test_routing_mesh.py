"""The routing mesh end to end: a published port answers on every node, spread over the
service's running tasks wherever they run."""

import socket
import sys
import urllib.request

from tests.e2e.conftest import WHOAMI
from tests.e2e.harness import LocalCluster, wait_for


def free_on_all(hosts: list[str]) -> int:
    for _ in range(100):
        with socket.socket() as s:
            s.bind((hosts[0], 0))
            port = s.getsockname()[1]
        try:
            for host in hosts[1:]:
                with socket.socket() as s:
                    s.bind((host, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no port free on every node address")


def who(host: str, port: int) -> str:
    with urllib.request.urlopen(f"http://{host}:{port}/", timeout=5) as resp:
        return resp.read().decode().split()[0]


def who_retrying(host: str, port: int) -> str:
    """A client that retries a failed request once."""
    try:
        return who(host, port)
    except OSError:
        return who(host, port)


def test_published_port_answers_on_every_node_and_spreads(cluster: LocalCluster):
    m = cluster.manager
    hosts = [n.host for n in cluster.nodes]
    port = free_on_all(hosts)
    # Tasks on two of the three nodes: the third must still answer.
    m.cli("node", "update", "--availability", "drain", "worker2")
    m.process_service(
        "--name",
        "web",
        "--replicas",
        "3",
        "-p",
        f"{port}:80",
        "--env",
        "WHOAMI={{.Service.Name}}.{{.Task.Slot}}",
        sys.executable,
        WHOAMI,
    )
    wait_for(lambda: len(cluster.running_tasks("web")) == 3, what="3 running")
    replicas = {"web.1", "web.2", "web.3"}
    for host in hosts:
        wait_for(lambda host=host: who(host, port) in replicas, what=f"mesh on {host}")
    # The drained node's table may still be catching up with the third replica: ask again
    # until every replica has answered there.
    seen: set[str] = set()

    def spread() -> bool:
        seen.update(who(hosts[2], port) for _ in range(10))
        return seen == replicas

    wait_for(spread, what=f"all of {replicas} answering on {hosts[2]} (seen {seen})")

    # Scaling down and draining take tasks out of the rotation; a client that retries once
    # never sees a failure meanwhile.
    m.cli("service", "scale", "-d", "web=2")
    wait_for(
        lambda: {who_retrying(hosts[2], port) for _ in range(10)} == {"web.1", "web.2"},
        what="scaled-down task leaves the rotation",
    )
    m.cli("node", "update", "--availability", "active", "worker2")
    m.cli("node", "update", "--availability", "drain", "worker1")
    drained = {
        t["Slot"]
        for t in cluster.running_tasks("web")
        if t["NodeID"] == cluster.node_id(cluster.nodes[1])
    }

    def moved() -> bool:
        answers = [who_retrying(hosts[0], port) for _ in range(10)]
        tasks = cluster.running_tasks("web")
        return (
            len(tasks) == 2
            and all(t["NodeID"] != cluster.node_id(cluster.nodes[1]) for t in tasks)
            and set(answers) == {"web.1", "web.2"}
        )

    wait_for(moved, what=f"drained node's tasks {drained} replaced and back in the rotation")
    labels = m.get("/nodes/worker2")["Description"]["Engine"].get("Labels") or {}
    assert labels.get("com.shoal.mesh.datapath") in ("userspace", "nftables")
