"""``service logs`` on a cluster of separate daemons: every node's agent publishes its tasks'
lines to the manager's log broker, and the CLI prints them with Docker's task prefix."""

import re

from tests.e2e.harness import LocalCluster, wait_for

SCRIPT = 'echo "hello $SLOT"; echo "bye $SLOT"; exec sleep 1000'
LINE = re.compile(r"logs\.(\d)\.([0-9a-z]{12})@(\S+)\s+\| (hello|bye) (\d)")


def lines(text: str) -> list[re.Match]:
    out = []
    for raw in text.splitlines():
        m = LINE.fullmatch(raw)
        assert m, raw
        out.append(m)
    return out


def test_service_logs_gather_every_nodes_tasks(cluster: LocalCluster):
    m = cluster.manager
    m.cli(
        "service", "create", "-d", "--runtime", "process", "--name", "logs", "--replicas", "3",
        "--env", "SLOT={{.Task.Slot}}", "--stop-grace-period", "1s", "sh", "-c", SCRIPT,
    )  # fmt: skip
    running = wait_for(
        lambda: len(cluster.running_tasks("logs")) == 3 and cluster.running_tasks("logs"),
        what="3 running",
    )
    assert len({t["NodeID"] for t in running}) == 3  # one per node: three agents publish
    wanted = {(str(t["Slot"]), word) for t in running for word in ("hello", "bye")}

    def all_lines():
        out = m.cli("service", "logs", "logs").stdout
        found = lines(out)
        return found if {(f[1], f[4]) for f in found} == wanted else None

    found = wait_for(all_lines, what="every task's two lines")
    assert len(found) == 6
    for f in found:
        assert f[1] == f[5]  # the line comes from the task its prefix names
    assert {f[3] for f in found} == {n.name for n in cluster.nodes}

    tail = lines(m.cli("service", "logs", "--tail", "1", "logs").stdout)
    assert sorted((f[1], f[4]) for f in tail) == [("1", "bye"), ("2", "bye"), ("3", "bye")]

    # One task's logs, by its ID, from whichever node runs it.
    task = next(t for t in running if t["NodeID"] != cluster.node_id(m))
    one = lines(m.cli("service", "logs", task["ID"]).stdout)
    assert [(f[1], f[2], f[4]) for f in one] == [
        (str(task["Slot"]), task["ID"][:12], "hello"),
        (str(task["Slot"]), task["ID"][:12], "bye"),
    ]

    missing = m.cli("service", "logs", "nosuch", check=False)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "no such task or service: nosuch"
    m.cli("service", "rm", "logs")
