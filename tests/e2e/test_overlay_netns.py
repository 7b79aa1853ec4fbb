"""Overlay networks across hosts of their own: three managers, each a full ``shoal daemon``
in its own network namespace (tests/e2e/netns_cluster.py), process tasks on an overlay
network finding each other by service name.

From inside a task (nsenter into its network and mount namespaces, as ``docker exec`` would
enter a container) we look at what the task sees: ``tasks.web`` resolves to every replica,
``web`` to the service's VIP, and the VIP spreads connections over the replicas on all
three hosts; a task on another network sees none of it. DNS answers and VIP backends follow
scaling, draining and a killed task; the network cannot be removed while in use; and after
the leader dies, new tasks get addresses no other live task has.

Needs root (network namespaces, VXLAN, nftables); skipped with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import WHOAMI
from tests.e2e.harness import wait_for
from tests.e2e.netns_cluster import NetnsCluster
from tests.integration.network.netns import Testbed, why_no_netns, why_no_nft

PROBE = Path(__file__).parent / "apps" / "probe.py"
NODES = ("node1", "node2", "node3")

_why = why_no_netns() or why_no_nft()
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.netns,
    pytest.mark.skipif(_why is not None, reason=str(_why)),
]


@pytest.fixture
def cluster() -> Iterator[NetnsCluster]:
    root = Path(tempfile.mkdtemp(prefix="shoal-ovl-", dir="/tmp"))
    with Testbed(hosts=len(NODES)) as bed:
        c = NetnsCluster(root, bed)
        try:
            # The daemons start at once; then the first inits and the others join.
            nodes = [c.add(name, wait=False) for name in NODES]
            for node in nodes:
                node.wait_ready()
            c.init("--dispatcher-heartbeat", "1s")
            for node in nodes[1:]:
                c.join_manager(node)
            yield c
        finally:
            c.close()
            shutil.rmtree(root, ignore_errors=True)


def probe(task: dict, *args: str) -> dict:
    """Run probe.py inside the task: in its network namespace and its mount namespace (where
    its resolv.conf is)."""
    pid = task["Status"]["ContainerStatus"]["PID"]
    r = subprocess.run(
        ["nsenter", "-t", str(pid), "-n", "-m", sys.executable, str(PROBE), *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def addresses(task: dict, network_id: str) -> list[str]:
    return [
        a.split("/")[0]
        for att in task.get("NetworksAttachments") or []
        if att["Network"]["ID"] == network_id
        for a in att["Addresses"]
    ]


def whoami(name: str, replicas: int, network: str) -> list[str]:
    return [
        "--name", name, "--replicas", str(replicas), "--network", network,
        "--env", "PORT=80", "--env", "WHOAMI={{.Service.Name}}.{{.Task.Slot}}@{{.Node.Hostname}}",
        sys.executable, WHOAMI,
    ]  # fmt: skip


def test_tasks_find_each_other_by_service_name_across_hosts(cluster: NetnsCluster) -> None:
    m = cluster.manager
    app = m.cli("network", "create", "-d", "overlay", "app").stdout.strip()
    other = m.cli("network", "create", "-d", "overlay", "other").stdout.strip()
    m.process_service(*whoami("web", 3, "app"))
    m.process_service("--name", "client", "--network", "app", "sleep", "3600")
    m.process_service("--name", "stranger", "--network", "other", "sleep", "3600")
    wait_for(lambda: len(cluster.running_tasks("web")) == 3, what="3 web tasks")
    wait_for(lambda: len(cluster.running_tasks("client")) == 1, what="the client task")
    wait_for(lambda: len(cluster.running_tasks("stranger")) == 1, what="the stranger task")

    web = cluster.running_tasks("web")
    hosts = {t["NodeID"] for t in web}
    assert len(hosts) == 3, "the replicas are spread over the three nodes"
    (client,) = cluster.running_tasks("client")
    (stranger,) = cluster.running_tasks("stranger")
    assert addresses(stranger, other) and not addresses(stranger, app)
    vip = m.get("/services/web")["Endpoint"]["VirtualIPs"][0]
    assert vip["NetworkID"] == app
    vip_addr = vip["Addr"].split("/")[0]
    web_addrs = sorted(a for t in web for a in addresses(t, app))
    assert len(web_addrs) == 3

    # tasks.web is every replica, web the VIP, from the client's own resolver.
    wait_for(lambda: probe(client, "resolve", "tasks.web")["addresses"] == web_addrs,
             what="tasks.web to resolve to the 3 replicas")  # fmt: skip
    assert probe(client, "resolve", "web")["addresses"] == [vip_addr]
    # 30 connections to the VIP reach all 3 replicas, two of them on other hosts.
    seen = probe(client, "get", "web", "80", "30")
    assert seen["failures"] == [], seen
    assert {a.split("@")[0] for a in seen["answers"]} == {"web.1", "web.2", "web.3"}, seen

    # A task on another network resolves none of these names and reaches none of them.
    assert probe(stranger, "resolve", "web")["addresses"] == []
    assert probe(stranger, "resolve", "tasks.web")["addresses"] == []
    assert probe(stranger, "connect", web_addrs[0], "80")["ok"] is False

    # The network cannot go while services use it.
    refused = m.cli("network", "rm", "app", check=False)
    assert refused.returncode == 1
    assert f"network {app} is in use by service" in refused.stderr

    # Scaling up: the new replica joins DNS and the VIP's rotation.
    m.cli("service", "scale", "-d", "web=4")
    wait_for(lambda: len(cluster.running_tasks("web")) == 4, what="4 web tasks")

    def web_addresses() -> list[str]:
        return sorted(a for t in cluster.running_tasks("web") for a in addresses(t, app))

    wait_for(lambda: probe(client, "resolve", "tasks.web")["addresses"] == web_addresses(),
             what="tasks.web to follow the scale-up")  # fmt: skip
    wait_for(
        lambda: (
            {a.split("@")[0] for a in probe(client, "get", "web", "80", "12")["answers"]}
            == {"web.1", "web.2", "web.3", "web.4"}
        ),
        what="the VIP to reach the 4th replica",
    )

    # A killed task drops out of DNS; its replacement comes in.
    victim = next(t for t in cluster.running_tasks("web") if t["NodeID"] != client["NodeID"])
    dead = addresses(victim, app)[0]
    os.kill(victim["Status"]["ContainerStatus"]["PID"], signal.SIGKILL)
    wait_for(lambda: dead not in probe(client, "resolve", "tasks.web")["addresses"],
             what="the killed task to leave tasks.web")  # fmt: skip
    wait_for(lambda: len(cluster.running_tasks("web")) == 4, what="the replacement task")
    wait_for(lambda: probe(client, "resolve", "tasks.web")["addresses"] == web_addresses(),
             what="the replacement to join tasks.web")  # fmt: skip

    # Draining a node moves its replicas; DNS and the VIP follow.
    drained = next(n for n in cluster.nodes if cluster.node_id(n) != client["NodeID"])
    m.cli("node", "update", "--availability", "drain", drained.name)
    wait_for(
        lambda: (
            len(cluster.running_tasks("web")) == 4
            and all(t["NodeID"] != cluster.node_id(drained) for t in cluster.running_tasks("web"))
        ),
        what="the drained node's replicas to move",
    )
    wait_for(lambda: probe(client, "resolve", "tasks.web")["addresses"] == web_addresses(),
             what="tasks.web after the drain")  # fmt: skip
    seen = probe(client, "get", "web", "80", "12")
    assert seen["failures"] == [], seen


def test_new_tasks_after_a_leader_change_get_addresses_no_live_task_has(
    cluster: NetnsCluster,
) -> None:
    m = cluster.manager
    app = m.cli("network", "create", "-d", "overlay", "app").stdout.strip()
    m.process_service("--name", "idle", "--network", "app", "--replicas", "4", "sleep", "3600")
    wait_for(lambda: len(cluster.running_tasks("idle")) == 4, what="4 tasks")
    leader = cluster.nodes[0]
    leader.stop(signal.SIGKILL)  # the leader dies without a word
    survivor = cluster.nodes[1]

    def scaled() -> bool:
        r = survivor.cli("service", "scale", "-d", "idle=8", check=False)
        return r.returncode == 0

    wait_for(scaled, what="a new leader to take the scale-up")

    def live() -> list[dict]:
        tasks = survivor.get("/tasks")
        return [t for t in tasks if t["DesiredState"] == "running" and addresses(t, app)]

    wait_for(lambda: len(live()) >= 8, what="8 tasks with addresses")
    taken = [a for t in live() for a in addresses(t, app)]
    assert len(taken) == len(set(taken)), sorted(taken)
    vips = [
        v["Addr"].split("/")[0] for v in survivor.get("/services/idle")["Endpoint"]["VirtualIPs"]
    ]
    assert not set(vips) & set(taken)
