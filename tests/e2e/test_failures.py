"""Nodes dying and coming back: the cluster keeps services at their declared state."""

import os
import re
import signal

import pytest

from tests.e2e.conftest import whoami_args
from tests.e2e.harness import LocalCluster, wait_for

pytestmark = pytest.mark.e2e


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_killed_worker_goes_down_and_its_tasks_move(cluster: LocalCluster):
    m = cluster.manager
    m.cli(*whoami_args("web", 3))
    wait_for(lambda: len(cluster.running_tasks("web")) == 3, what="3 running")
    worker1 = cluster.nodes[1]
    wid = cluster.node_id(worker1)
    worker1.kill()

    wait_for(
        lambda: m.get(f"/nodes/{wid}")["Status"]["State"] == "down", what="worker1 marked down"
    )
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


def test_restarted_worker_adopts_its_tasks(cluster: LocalCluster):
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

    worker2.stop(signal.SIGKILL)
    assert _pid_alive(pid), "a task's process outlives its daemon"
    worker2.start()

    wait_for(lambda: m.get(f"/nodes/{wid}")["Status"]["State"] == "ready", what="worker2 back")
    wait_for(lambda: len(cluster.running_tasks("web")) == 3, what="3 running")
    still = [t for t in cluster.running_tasks("web") if t["NodeID"] == wid]
    assert [t["ID"] for t in still] == [task["ID"]], "the same task, not a new copy"
    assert still[0]["Status"]["ContainerStatus"]["PID"] == pid
    assert _pid_alive(pid)


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
