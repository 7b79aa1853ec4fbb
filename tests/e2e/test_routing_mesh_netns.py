"""The routing mesh across hosts of their own: three full ``shoal daemon`` processes, each
in its own network namespace with its own address (tests/integration/network/netns.py),
and a client on a fourth host outside the cluster. The service's tasks are kept off one
node; that node must still answer on the published port and spread connections over all
the tasks, which run on the other hosts.

Needs root (ip netns) and, for the kernel data path, nft; skipped with the reason otherwise.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import WHOAMI
from tests.e2e.harness import wait_for
from tests.e2e.netns_cluster import NetnsCluster
from tests.integration.network.netns import Testbed, why_no_netns, why_no_nft

CLIENT = Path(__file__).parents[1] / "integration" / "network" / "apps" / "client.py"
PUBLISHED = 8080
NODES = ("node1", "node2", "node3")  # hosts 1-3; node3 gets no task
OUTSIDE = 4  # a client machine that is not a node

_no_netns = why_no_netns()
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.netns,
    pytest.mark.skipif(_no_netns is not None, reason=str(_no_netns)),
]


def requests(bed: Testbed, on: int, addr: str, count: int) -> dict:
    """``count`` HTTP requests, each on a new connection, from host ``on`` to addr:8080."""
    r = bed.run(
        on,
        [sys.executable, str(CLIENT), addr, str(PUBLISHED), "--http", "--count", str(count)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def answers(bed: Testbed, on: int, addr: str, count: int) -> set[str]:
    """The replicas that answered, or an empty set if any request failed."""
    seen = requests(bed, on, addr, count)
    return set() if seen["failures"] else set(seen["names"])


@pytest.fixture
def bed() -> Iterator[Testbed]:
    with Testbed(hosts=4) as b:
        yield b


@pytest.fixture
def root() -> Iterator[Path]:
    # Unix socket paths are limited to 108 bytes; pytest's tmp_path can be longer.
    path = Path(tempfile.mkdtemp(prefix="shoal-netns-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


DATA_PATHS = [
    "userspace",
    pytest.param(
        "nftables",
        marks=pytest.mark.skipif(why_no_nft() is not None, reason=str(why_no_nft())),
    ),
]


@pytest.mark.parametrize("data_path", DATA_PATHS)
def test_a_node_without_tasks_answers_and_spreads_over_tasks_on_other_hosts(
    bed: Testbed, root: Path, data_path: str
) -> None:
    cluster = NetnsCluster(root, bed, ["--mesh-data-path", data_path])
    try:
        # The daemons start at once; then the first inits and the others join.
        m, *workers = [cluster.add(name, wait=False) for name in NODES]
        for node in (m, *workers):
            node.wait_ready()
        cluster.init("--dispatcher-heartbeat", "1s")
        for node in workers:
            cluster.join_worker(node)
        m.cli(
            "service", "create", "-d", "--runtime", "process", "--name", "web",
            "--replicas", "3", "-p", f"{PUBLISHED}:80",
            "--constraint", f"node.hostname!={NODES[2]}",
            "--env", "WHOAMI={{.Service.Name}}.{{.Task.Slot}}@{{.Node.Hostname}}",
            sys.executable, WHOAMI,
        )  # fmt: skip
        wait_for(lambda: len(cluster.running_tasks("web")) == 3, what="3 running tasks")
        hostname = {cluster.node_id(n): n.name for n in cluster.nodes}
        tasks = cluster.running_tasks("web")
        # Spread over the two other nodes, so node3's traffic crosses to both hosts.
        assert {hostname[t["NodeID"]] for t in tasks} == set(NODES[:2]), tasks
        # What whoami answers: "web.<slot>@<hostname>".
        replicas = {f"web.{t['Slot']}@{hostname[t['NodeID']]}" for t in tasks}
        assert len(replicas) == 3, replicas

        addrs = [n.host for n in cluster.nodes]
        # The mesh converges within a second of a task running; wait for all three to be
        # in the rotation of the node without tasks, then check every node answers.
        wait_for(
            lambda: answers(bed, OUTSIDE, addrs[2], 9) == replicas,
            what=f"node3's mesh to reach {sorted(replicas)}",
        )
        for addr in addrs:
            seen = requests(bed, OUTSIDE, addr, 3)
            assert seen["failures"] == [], (addr, seen)
            assert set(seen["names"]) <= replicas, (addr, seen)
        # 30 successive connections from outside to the node without tasks reach all 3.
        seen = requests(bed, OUTSIDE, addrs[2], 30)
        assert seen["failures"] == [], seen
        assert set(seen["names"]) == replicas, seen
        # On the node itself, to its own address.
        seen = requests(bed, 3, addrs[2], 9)
        assert seen["failures"] == [], seen
        assert set(seen["names"]) == replicas, seen

        labels = m.get(f"/nodes/{NODES[2]}")["Description"]["Engine"].get("Labels") or {}
        assert labels.get("com.shoal.mesh.datapath") == data_path
    finally:
        cluster.close()
