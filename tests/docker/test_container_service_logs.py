"""``service logs`` of a container service on a local cluster sharing one engine: the agents
read their containers' logs from the engine and publish them to the manager's broker."""

import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docker.conftest import IMAGE
from tests.e2e.harness import LocalCluster, local_cluster, wait_for

pytestmark = pytest.mark.e2e

LINE = re.compile(r"clogs\.(\d)\.([0-9a-z]{12})@(\S+)\s+\| (hello|bye) (\d)")


@pytest.fixture
def cluster(docker_engine: str) -> Iterator[LocalCluster]:
    root = Path(tempfile.mkdtemp(prefix="shoal-ctrlogs-", dir="/tmp"))
    try:
        # Swarm's heartbeat period (5 s): no node is lost here, and with 1 s a daemon held up
        # 2 to 3 s on a loaded machine is marked down and its tasks replaced (seed 002's flake).
        with local_cluster(root, workers=1) as c:
            yield c
    finally:
        shutil.rmtree(root, ignore_errors=True)


def lines(text: str) -> list[re.Match]:
    found = [LINE.fullmatch(raw) for raw in text.splitlines()]
    assert all(found), text
    return found  # type: ignore[return-value]


def test_container_service_logs(cluster: LocalCluster):
    m = cluster.manager
    m.cli(
        "service", "create", "-d", "--name", "clogs", "--replicas", "2",
        "--env", "SLOT={{.Task.Slot}}", "--stop-grace-period", "0s",
        IMAGE, "sh", "-c", 'echo "hello $SLOT"; echo "bye $SLOT"; exec sleep 300',
    )  # fmt: skip
    running = wait_for(
        lambda: len(cluster.running_tasks("clogs")) == 2 and cluster.running_tasks("clogs"),
        what="2 running",
    )
    assert len({t["NodeID"] for t in running}) == 2
    wanted = {(str(t["Slot"]), w) for t in running for w in ("hello", "bye")}

    def all_lines():
        found = lines(m.cli("service", "logs", "clogs").stdout)
        return found if {(f[1], f[4]) for f in found} == wanted else None

    found = wait_for(all_lines, what="both containers' lines")
    assert len(found) == 4 and all(f[1] == f[5] for f in found)
    assert {f[3] for f in found} == {n.name for n in cluster.nodes}
    tail = lines(m.cli("service", "logs", "--tail", "1", "clogs").stdout)
    assert sorted((f[1], f[4]) for f in tail) == [("1", "bye"), ("2", "bye")]
    m.cli("service", "rm", "clogs")
