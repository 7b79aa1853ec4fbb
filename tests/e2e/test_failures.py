"""Nodes dying and coming back: the cluster keeps services at their declared state."""

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psutil
import pytest

from tests.e2e.conftest import whoami_args
from tests.e2e.harness import LocalCluster, Node, local_cluster, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def default_cluster(short_tmp: Path) -> Iterator[LocalCluster]:
    """As ``cluster``, with every setting at its default (heartbeat period 5 s, reconnect
    grace 2 s)."""
    with local_cluster(short_tmp, workers=2) as c:
        yield c


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _node_went_down(m: Node, node_id: str, since: float, until: float) -> bool:
    """Whether the manager's events say the node went down between the two times (the
    request returns at ``until``)."""
    filters = quote(json.dumps({"type": ["node"]}))
    raw = m.api("GET", f"/events?since={since:.3f}&until={until:.3f}&filters={filters}").body
    events = [json.loads(line) for line in (raw or "").splitlines() if line.strip()]
    return any(
        e["Actor"]["ID"] == node_id and e["Actor"]["Attributes"].get("state.new") == "down"
        for e in events
    )


def test_worker_whose_connection_resets_keeps_its_tasks_and_a_killed_one_loses_them(
    cluster: LocalCluster,
):
    m = cluster.manager
    m.cli(*whoami_args("web", 3))
    running = wait_for(
        lambda: len(cluster.running_tasks("web")) == 3 and cluster.running_tasks("web"),
        what="3 running",
    )
    worker1 = cluster.nodes[1]
    wid = cluster.node_id(worker1)
    [task] = [t for t in running if t["NodeID"] == wid]

    # A network blip: worker1's connections to the manager reset, its daemon lives on. It
    # is back in a new session within the manager's reconnect grace (2 s): never down, its
    # task neither moved nor restarted.
    def sessions() -> int:
        log = worker1.log_file.read_text()
        return len(re.findall(r"shoal\.agent\.agent: session \w+ with ", log))

    before = sessions()
    since = time.time()
    assert _reset_connections(worker1, m) > 0
    wait_for(lambda: sessions() > before, what="worker1 in a new session")
    assert not _node_went_down(m, wid, since, since + 4)  # the grace and well past it
    assert m.get(f"/nodes/{wid}")["Status"]["State"] == "ready"
    assert len(cluster.tasks("web")) == 3
    still = [t for t in cluster.running_tasks("web") if t["NodeID"] == wid]
    assert [t["ID"] for t in still] == [task["ID"]]
    assert still[0]["Status"]["ContainerStatus"]["PID"] == task["Status"]["ContainerStatus"]["PID"]

    # Its daemon killed: its connections close and it does not come back.
    worker1.kill()
    wait_for(
        lambda: m.get(f"/nodes/{wid}")["Status"]["State"] == "down", what="worker1 marked down"
    )
    assert m.get(f"/nodes/{wid}")["Status"]["Message"] == "heartbeat failure"
    assert re.search(r"worker1\s+Down", m.cli("node", "ls").stdout)
    wait_for(
        lambda: (
            len(cluster.running_tasks("web")) == 3
            and all(t["NodeID"] != wid for t in cluster.running_tasks("web"))
        ),
        what="replacements running elsewhere",
    )
    # The lost task stays in history: desired shutdown, last seen running.
    old = [t for t in cluster.tasks("web") if t["NodeID"] == wid]
    assert old and all(t["DesiredState"] == "shutdown" for t in old)


def test_manager_restart_loses_nothing(cluster: LocalCluster):
    m = cluster.manager
    m.cli(*whoami_args("web", 3))
    m.process_service(
        "--name",
        "idle",
        "--mode",
        "global",
        "sleep",
        "3600",
    )
    wait_for(lambda: len(cluster.running_tasks("web")) == 3, what="3 running")
    wait_for(lambda: len(cluster.running_tasks("idle")) == 3, what="one idle task per node")
    before = {s["Spec"]["Name"]: s["Version"]["Index"] for s in m.get("/services")}
    tasks_before = {t["ID"] for t in cluster.running_tasks("web")}

    m.kill()
    m.start()

    after = {s["Spec"]["Name"]: s["Version"]["Index"] for s in m.get("/services")}
    assert after == before
    # The same tasks keep running: nothing was restarted or duplicated.
    wait_for(
        lambda: {t["ID"] for t in cluster.running_tasks("web")} == tasks_before,
        what="same tasks running after manager restart",
    )
    assert len(cluster.running_tasks("idle")) == 3
    assert "Leader" in m.cli("node", "ls").stdout


def test_restarted_worker_adopts_its_tasks(default_cluster: LocalCluster):
    """A worker's daemon stopped and started again (an upgrade, say): its tasks run on
    meanwhile, and it takes them back. It told the managers it was restarting, so they give
    it its heartbeat timeout (15 s) to return, not the 2 s grace of a lost node."""
    cluster = default_cluster
    m = cluster.manager
    m.cli(*whoami_args("web", 3))
    running = wait_for(
        lambda: len(cluster.running_tasks("web")) == 3 and cluster.running_tasks("web"),
        what="3 running",
    )
    worker2 = cluster.nodes[2]
    wid = cluster.node_id(worker2)
    [task] = [t for t in running if t["NodeID"] == wid]
    pid = task["Status"]["ContainerStatus"]["PID"]
    assert _pid_alive(pid)

    worker2.stop()
    assert _pid_alive(pid), "a task's process outlives its daemon"
    worker2.start()

    wait_for(lambda: m.get(f"/nodes/{wid}")["Status"]["State"] == "ready", what="worker2 back")
    wait_for(lambda: len(cluster.running_tasks("web")) == 3, what="3 running")
    still = [t for t in cluster.running_tasks("web") if t["NodeID"] == wid]
    assert [t["ID"] for t in still] == [task["ID"]], "the same task, not a new copy"
    assert still[0]["Status"]["ContainerStatus"]["PID"] == pid
    assert _pid_alive(pid)


def _reset_connections(node: Node, to: Node) -> int:
    """Reset every TCP connection of ``node``'s daemon to ``to``'s swarm port, as a network
    blip would (both ends see a reset). Returns how many there were."""
    assert node.proc is not None
    conns = [
        c
        for c in psutil.Process(node.proc.pid).net_connections(kind="tcp")
        if c.raddr and c.raddr.port == to.port and c.status == psutil.CONN_ESTABLISHED
    ]
    for c in conns:
        subprocess.run(
            ["ss", "-K", "sport", "=", str(c.laddr.port), "dport", "=", str(c.raddr.port)],
            check=True, capture_output=True,
        )  # fmt: skip
    return len(conns)


def test_restart_policy_replaces_a_failing_task(cluster: LocalCluster):
    m = cluster.manager
    m.process_service(
        "--name",
        "crash",
        "--restart-condition",
        "on-failure",
        "--restart-delay",
        "0s",
        "--restart-max-attempts",
        "2",
        "sh",
        "-c",
        "exit 3",
    )
    wait_for(lambda: len(cluster.tasks("crash")) == 3, what="first try and two restarts")
    tasks = cluster.tasks("crash")
    wait_for(
        lambda: all(t["Status"]["State"] == "failed" for t in cluster.tasks("crash")),
        what="all failed",
    )
    assert all(t["Status"]["Err"] == "task: non-zero exit (3)" for t in cluster.tasks("crash"))
    assert all(t["Status"]["ContainerStatus"]["ExitCode"] == 3 for t in cluster.tasks("crash"))
    assert len(tasks) == 3
