"""A process service on an overlay network that publishes a port: the routing mesh answers on
every node and spreads over the replicas, each of which runs in a network namespace of its
own (its node forwards the task's host port to it, as docker-proxy does for a container).

A local cluster on one host (each node its own VXLAN port); needs root for overlay networks.
"""

import os
import sys
import urllib.request

import pytest

from tests.e2e.conftest import WHOAMI
from tests.e2e.harness import local_cluster, wait_for
from tests.integration.network.netns import why_no_nft

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="overlay networks need root"),
    pytest.mark.skipif(why_no_nft() is not None, reason=str(why_no_nft())),
]


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=3) as r:
        return r.read().decode().split()[0]


def test_published_port_reaches_tasks_in_their_own_namespaces(short_tmp):
    with local_cluster(short_tmp, workers=1) as c:
        m = c.manager
        m.cli("network", "create", "-d", "overlay", "app")
        m.process_service(
            "--name", "web", "--replicas", "2", "--network", "app", "-p", "8089:80",
            "--env", "WHOAMI={{.Task.Slot}}@{{.Node.Hostname}}", sys.executable, WHOAMI,
        )  # fmt: skip
        wait_for(lambda: len(c.running_tasks("web")) == 2, what="2 running tasks")
        assert {t["NodeID"] for t in c.running_tasks("web")} == {c.node_id(n) for n in c.nodes}
        hostname = {c.node_id(n): n.name for n in c.nodes}
        replicas = {f"{t['Slot']}@{hostname[t['NodeID']]}" for t in c.running_tasks("web")}
        for node in c.nodes:
            url = f"http://{node.host}:8089/"

            def both(url: str = url) -> bool:
                try:
                    return {get(url) for _ in range(6)} == replicas
                except OSError:
                    return False

            wait_for(both, what=f"{url} to reach {sorted(replicas)}")
