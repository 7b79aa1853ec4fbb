"""Overlay networks with the container runtime, across hosts of their own: three shoal
managers in their own network namespaces, each with a Docker Engine of its own there, and
seed 003's walk: ``my-web`` (busybox httpd, 3 replicas) and ``my-busybox`` on ``my-network``;
from inside the busybox container, as ``docker exec`` does, ``nslookup my-web`` answers the
VIP, ``nslookup tasks.my-web`` every replica, and ``wget -O- my-web`` reaches all three,
two of them on other hosts.

Needs root, network namespaces and dockerd; skipped with the reason otherwise.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docker.testimage import IMAGE
from tests.e2e.harness import wait_for
from tests.e2e.netns_cluster import NetnsCluster
from tests.e2e.netns_engines import HostEngines, why_no_dockerd
from tests.integration.network.netns import Testbed, why_no_netns, why_no_nft

NODES = ("node1", "node2", "node3")

_why = why_no_netns() or why_no_nft() or why_no_dockerd()
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.netns,
    pytest.mark.docker,
    pytest.mark.skipif(_why is not None, reason=str(_why)),
]


@pytest.fixture
def cluster(request: pytest.FixtureRequest) -> Iterator[tuple[NetnsCluster, HostEngines]]:
    root = Path(tempfile.mkdtemp(prefix="shoal-ovd-", dir="/tmp"))
    failed_before = request.session.testsfailed
    with Testbed(hosts=len(NODES)) as bed:
        engines = HostEngines(bed, len(NODES))
        c = NetnsCluster(root, bed)
        failed = True  # until the test has run: a set-up that fails keeps the engines' logs
        try:
            engines.start()
            # The daemons start at once; then the first inits and the others join.
            nodes = [
                c.add(name, ["--engine-host", engines.host(i)], wait=False)
                for i, name in enumerate(NODES, start=1)
            ]
            for node in nodes:
                node.wait_ready()
            c.init("--dispatcher-heartbeat", "1s")
            for node in nodes[1:]:
                c.join_manager(node)
            yield c, engines
            # The test's own result is counted before its teardown runs.
            failed = request.session.testsfailed > failed_before
        finally:
            c.close()
            engines.stop(keep_logs=failed)
            shutil.rmtree(root, ignore_errors=True)


def container_of(engines: HostEngines, cluster: NetnsCluster, task: dict) -> tuple[int, str]:
    host = next(
        i for i, n in enumerate(cluster.nodes, start=1) if cluster.node_id(n) == task["NodeID"]
    )
    return host, task["Status"]["ContainerStatus"]["ContainerID"]


def test_seed_003_service_discovery_in_containers(
    cluster: tuple[NetnsCluster, HostEngines],
) -> None:
    c, engines = cluster
    m = c.manager
    net = m.cli("network", "create", "--driver", "overlay", "my-network").stdout.strip()
    m.cli(
        "service", "create", "-d", "--replicas", "3", "--network", "my-network",
        "--name", "my-web", IMAGE,
        "sh", "-c", "mkdir -p /www && hostname > /www/index.html && httpd -f -p 80 -h /www",
    )  # fmt: skip
    m.cli("service", "create", "-d", "--name", "my-busybox", "--network", "my-network",
          IMAGE, "sleep", "3000")  # fmt: skip
    wait_for(lambda: len(c.running_tasks("my-web")) == 3, what="3 my-web containers")
    wait_for(lambda: len(c.running_tasks("my-busybox")) == 1, what="the busybox container")
    web = c.running_tasks("my-web")
    assert len({t["NodeID"] for t in web}) == 3
    vip = m.get("/services/my-web")["Endpoint"]["VirtualIPs"][0]
    assert vip["NetworkID"] == net
    (busybox,) = c.running_tasks("my-busybox")
    host, container = container_of(engines, c, busybox)

    def sh(*argv: str) -> str:
        return engines.docker(host, "exec", container, *argv, check=False).stdout

    assert "nameserver 127.0.0.11" in sh("cat", "/etc/resolv.conf")
    wait_for(lambda: vip["Addr"].split("/")[0] in sh("nslookup", "my-web"),
             what="my-web to resolve to its VIP")  # fmt: skip
    task_ips = sorted(
        a.split("/")[0] for t in web for a in t["NetworksAttachments"][0]["Addresses"]
    )

    def resolved() -> list[str]:
        out = sh("nslookup", "tasks.my-web")
        return sorted(set(re.findall(r"Address:\s+(10\.\d+\.\d+\.\d+)", out)))

    wait_for(lambda: resolved() == task_ips, what="tasks.my-web to resolve to the 3 replicas")
    hostnames = {sh("wget", "-q", "-O-", "my-web").strip() for _ in range(15)}
    expected = {engines.docker(i, "exec", cid, "hostname").stdout.strip()
                for i, cid in (container_of(engines, c, t) for t in web)}  # fmt: skip
    assert hostnames == expected, (hostnames, expected)
