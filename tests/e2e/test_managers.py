"""Several managers as real daemons: raft keeps the swarm going when one of three dies, with
no acknowledged write lost; managers join with the manager token, are promoted and demoted,
and leave as Docker says they may. Addresses 127.0.44.x (raft's corner of loopback)."""

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.e2e.harness import Node, kill_tasks_under, wait_for

pytestmark = pytest.mark.e2e


class Managers:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.nodes: list[Node] = []

    def add(self, name: str, env: dict[str, str] | None = None) -> Node:
        node = Node(name=name, host=f"127.0.44.{len(self.nodes) + 1}", root=self.root / name)
        node.env = env or {}
        self.nodes.append(node)
        node.start()
        return node

    def init(self, node: Node) -> None:
        node.cli("swarm", "init", "--advertise-addr", node.host)

    def join(self, node: Node, role: str, via: Node) -> None:
        token = via.cli("swarm", "join-token", "-q", role).stdout.strip()
        node.cli("swarm", "join", "--token", token, via.addr)

    def node_id(self, node: Node) -> str:
        return node.get("/info")["Swarm"]["NodeID"]

    def manager_status(self, via: Node) -> dict[str, str]:
        """hostname -> MANAGER STATUS column of `node ls`, through the API."""
        out = {}
        for n in via.get("/nodes"):
            ms = n.get("ManagerStatus")
            if ms is None:
                out[n["Description"]["Hostname"]] = ""
            elif ms.get("Leader"):
                out[n["Description"]["Hostname"]] = "Leader"
            else:
                out[n["Description"]["Hostname"]] = ms["Reachability"].capitalize()
        return out

    def leader(self, via: Node) -> Node:
        status = self.manager_status(via)
        name = next(h for h, s in status.items() if s == "Leader")
        return next(n for n in self.nodes if n.name == name)

    def close(self) -> None:
        for node in self.nodes:
            node.stop()
        kill_tasks_under(self.root)  # tasks outlive their daemon by design


@pytest.fixture
def managers(short_tmp: Path) -> Iterator[Managers]:
    m = Managers(short_tmp)
    try:
        yield m
    finally:
        m.close()


def three_managers(m: Managers, env: dict[str, str] | None = None) -> list[Node]:
    m1, m2, m3 = m.add("m1", env), m.add("m2", env), m.add("m3", env)
    m.init(m1)
    m.join(m2, "manager", m1)
    m.join(m3, "manager", m2)  # through a follower: it passes the requests to the leader
    wait_for(
        lambda: sorted(m.manager_status(m1).values()) == ["Leader", "Reachable", "Reachable"],
        what="three managers, one leader",
    )
    return [m1, m2, m3]


def service_body(name: str) -> dict:
    return {
        "Name": name,
        "Mode": {"Replicated": {"Replicas": 0}},
        "TaskTemplate": {"Runtime": "process", "ContainerSpec": {"Image": "sleep"}},
    }


class Writer(threading.Thread):
    """Creates services through one manager's API, one after another, remembering which
    creations were acknowledged (201) and which got an error."""

    def __init__(self, via: Node) -> None:
        super().__init__(daemon=True)
        self.via = via
        self.acked: list[str] = []
        self.failed: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            name = f"w{n}"
            n += 1
            try:
                resp = self.via.api("POST", "/services/create", service_body(name))
                (self.acked if resp.status == 201 else self.failed).append(name)
            except OSError:
                self.failed.append(name)
            time.sleep(0.01)


def service_names(node: Node) -> set[str]:
    return {s["Spec"]["Name"] for s in node.get("/services")}


def statuses(node: Node) -> dict[str, dict]:
    """`docker service ls`'s counts on ``node``, per service name."""
    return {s["Spec"]["Name"]: s["ServiceStatus"] for s in node.get("/services?status=true")}


def test_leader_killed_cluster_keeps_going_and_no_acknowledged_write_is_lost(
    managers: Managers,
):
    nodes = three_managers(managers)
    leader = managers.leader(nodes[0])
    followers = [n for n in nodes if n is not leader]
    writer = Writer(followers[0])
    writer.start()
    try:
        wait_for(lambda: len(writer.acked) >= 20, what="writes before the kill")
        leader.kill()
        before_kill = len(writer.acked)
        wait_for(lambda: len(writer.acked) >= before_kill + 20, what="writes after the kill")
    finally:
        writer.stop.set()
        writer.join()

    survivor = followers[1]
    new_leader = managers.leader(survivor)
    assert new_leader is not leader
    status = managers.manager_status(survivor)
    wait_for(
        lambda: managers.manager_status(survivor)[leader.name] == "Unreachable",
        what="the dead leader shown unreachable",
    )
    for node in followers:
        names = service_names(node)
        assert set(writer.acked) <= names, "an acknowledged write was lost"
    # The killed manager comes back from its own disk and catches up.
    leader.start()
    wait_for(lambda: set(writer.acked) <= service_names(leader), what="restarted one catches up")
    wait_for(
        lambda: (
            sorted(managers.manager_status(survivor).values())
            == ["Leader", "Reachable", "Reachable"]
        ),
        what="all three reachable again",
    )
    assert status[new_leader.name] == "Leader"


def test_any_manager_serves_reads_and_writes(managers: Managers):
    # Every write logged as slow, to see that the debug aid reaches the daemons' logs.
    m1, m2, m3 = three_managers(managers, env={"SHOAL_SLOW_WRITE_LOG": "0.000001"})
    leader = managers.leader(m1)
    follower = next(n for n in (m1, m2, m3) if n is not leader)
    resp = follower.api("POST", "/services/create", service_body("made-on-a-follower"))
    assert resp.status == 201, resp.body
    # read-your-writes on the manager that took the write
    assert "made-on-a-follower" in service_names(follower)
    # Where the write's time went, on the follower that took it and on the leader.
    forwarded = follower.log_file.read_text()
    assert "slow forwarded write: " in forwarded and " for create_service (done " in forwarded
    wait_for(lambda: "for ControlAPI.create_service" in leader.log_file.read_text())
    assert "raft: entry " in leader.log_file.read_text()
    for node in (m1, m2, m3):
        wait_for(lambda node=node: "made-on-a-follower" in service_names(node))
    # errors come back with the leader's status and message
    again = follower.api("POST", "/services/create", service_body("made-on-a-follower"))
    assert again.status == 409
    assert "already exists" in again.body["message"]
    info = follower.get("/info")["Swarm"]
    assert info["ControlAvailable"] is True
    assert info["Managers"] == 3
    assert sorted(rm["Addr"] for rm in info["RemoteManagers"]) == sorted(
        n.addr for n in (m1, m2, m3)
    )
    assert info["Cluster"]["Spec"]["Raft"]["ElectionTick"] == 10


def test_promote_demote_and_leave(managers: Managers):
    m1, w1, w2 = managers.add("m1"), managers.add("w1"), managers.add("w2")
    managers.init(m1)
    managers.join(w1, "worker", m1)
    managers.join(w2, "worker", m1)

    # The last manager cannot be demoted, nor leave without --force.
    out = m1.cli("node", "demote", "m1", check=False)
    assert out.returncode == 1
    assert "attempting to demote the last manager of the swarm" in out.stderr
    resp = m1.api("POST", "/swarm/leave")
    assert resp.status == 503
    assert (
        "Removing the last manager erases all current state of the swarm" in (resp.body["message"])
    )

    assert m1.cli("node", "promote", "w1", "w2").stdout == (
        "Node w1 promoted to a manager in the swarm.\nNode w2 promoted to a manager in the swarm.\n"
    )
    wait_for(
        lambda: (
            managers.manager_status(m1) == {"m1": "Leader", "w1": "Reachable", "w2": "Reachable"}
        ),
        what="promoted workers are reachable managers",
    )
    # a promoted node serves the control API
    wait_for(lambda: w1.get("/info")["Swarm"]["ControlAvailable"], what="w1 is a manager")
    assert re.search(r"w2\s+Ready\s+Active\s+Reachable", w1.cli("node", "ls").stdout)

    # Leaving as one of three managers: Docker's warning, since two are left out of three.
    resp = w2.api("POST", "/swarm/leave")
    assert resp.status == 503
    assert resp.body["message"] == (
        "You are attempting to leave the swarm on a node that is participating as a manager. "
        "The only way to restore a swarm that has lost consensus is to reinitialize it with "
        "`--force-new-cluster`. Use `--force` to suppress this message."
    )

    assert m1.cli("node", "demote", "w2").stdout == "Manager w2 demoted in the swarm.\n"
    wait_for(
        lambda: managers.manager_status(m1) == {"m1": "Leader", "w1": "Reachable", "w2": ""},
        what="w2 back to a worker",
    )
    wait_for(lambda: not w2.get("/info")["Swarm"]["ControlAvailable"], what="w2 stops managing")
    resp = w2.api("GET", "/nodes")
    assert resp.status == 503 and "not a swarm manager" in resp.body["message"]

    # Demoting the leader hands leadership over first.
    assert m1.cli("node", "demote", "m1").stdout == "Manager m1 demoted in the swarm.\n"
    wait_for(
        lambda: managers.manager_status(w1) == {"m1": "", "w1": "Leader", "w2": ""},
        what="w1 leads alone",
    )
    w1.cli("service", "create", "-d", "--runtime", "process", "--name", "after", "sleep", "100")
    wait_for(lambda: "after" in service_names(w1))

    # A worker that was a manager leaves as any worker.
    assert w2.cli("swarm", "leave").stdout.strip() == "Node left the swarm."


def test_a_killed_follower_recovers_from_its_disk(managers: Managers):
    m1, m2, m3 = three_managers(managers)
    leader = managers.leader(m1)
    follower = next(n for n in (m1, m2, m3) if n is not leader)
    for k in range(5):
        assert leader.api("POST", "/services/create", service_body(f"s{k}")).status == 201
    wait_for(lambda: len(service_names(follower)) == 5)
    follower.kill()
    for k in range(5, 10):
        assert leader.api("POST", "/services/create", service_body(f"s{k}")).status == 201
    follower.start()
    wait_for(lambda: len(service_names(follower)) == 10, what="the follower caught up")
    # Its service ls counts (kept as its store changes, counted again after a restore) are the
    # leader's: a global service running on each manager.
    body = service_body("counted")
    body["Mode"] = {"Global": {}}
    body["TaskTemplate"]["ContainerSpec"] = {"Image": "sleep", "Args": ["600"]}
    assert leader.api("POST", "/services/create", body).status == 201
    running = {"RunningTasks": 3, "DesiredTasks": 3, "CompletedTasks": 0}
    for node in (leader, follower):
        wait_for(
            lambda node=node: statuses(node).get("counted") == running,
            what=f"the global service's counts on {node.name}",
        )
        assert statuses(node)["s0"] == {"RunningTasks": 0, "DesiredTasks": 0, "CompletedTasks": 0}
    assert follower.get("/info")["Swarm"]["LocalNodeState"] == "active"
    assert managers.leader(follower) is leader


def test_force_new_cluster_recovers_a_swarm_that_lost_its_quorum(managers: Managers):
    m1, m2, m3 = three_managers(managers)
    assert m1.api("POST", "/services/create", service_body("kept")).status == 201
    wait_for(lambda: "kept" in service_names(m2) and "kept" in service_names(m3))
    m2.kill()
    m3.kill()
    # (A write caught as the leader steps down fails with "lost leadership before the entry
    # committed"; once it has, with Swarm's no-leader message.)
    wait_for(
        lambda: (
            m1.api("POST", "/services/create", service_body("x"))
            .body["message"]
            .startswith("The swarm does not have a leader.")
        ),
        what="no leader",
    )
    assert m1.api("GET", "/nodes").status == 503  # reads too: the state may be stale

    out = m1.cli("swarm", "init", "--force-new-cluster", "--advertise-addr", m1.host)
    assert out.returncode == 0
    wait_for(lambda: managers.manager_status(m1)["m1"] == "Leader", what="m1 leads alone")
    assert "kept" in service_names(m1)  # the state survived
    assert m1.api("POST", "/services/create", service_body("after")).status == 201
    # The new cluster grows again: a new manager joins it.
    m4 = managers.add("m4")
    managers.join(m4, "manager", m1)
    wait_for(
        lambda: (
            managers.manager_status(m1)["m1"] == "Leader"
            and managers.manager_status(m1)["m4"] == "Reachable"
        ),
        what="m4 a reachable manager",
    )
    assert {"kept", "after"} <= service_names(m4)


def test_a_worker_follows_the_leader_and_keeps_its_tasks(managers: Managers):
    m1, m2, m3 = three_managers(managers)
    worker = managers.add("w1")
    managers.join(worker, "worker", m2)
    wid = managers.node_id(worker)
    leader = managers.leader(m1)
    survivor = next(n for n in (m1, m2, m3) if n is not leader)
    create = [
        "service",
        "create",
        "-d",
        "--runtime",
        "process",
        "--constraint",
        "node.role==worker",
        "--name",
    ]
    survivor.cli(*create, "before", "sleep", "3600")

    def running(service: str) -> list[dict]:
        tasks = survivor.get(f"/tasks?filters={quote(json.dumps({'service': [service]}))}")
        return [t for t in tasks if t["Status"]["State"] == "running" and t["NodeID"] == wid]

    [task] = wait_for(lambda: running("before"), what="a task on the worker")
    leader.kill()
    # The worker's session moves to the new leader: it stays ready, its task is the same,
    # and it takes new work.
    survivor.cli(*create, "after", "sleep", "3600")
    wait_for(lambda: running("after"), what="new work reaches the worker")
    assert [t["ID"] for t in running("before")] == [task["ID"]]
    assert survivor.get(f"/nodes/{wid}")["Status"]["State"] == "ready"
    managers_seen = {rm["Addr"] for rm in worker.get("/info")["Swarm"]["RemoteManagers"]}
    assert managers_seen == {m1.addr, m2.addr, m3.addr}


def test_service_logs_through_a_follower(managers: Managers):
    m1, m2, m3 = three_managers(managers)
    leader = managers.leader(m1)
    follower = next(n for n in (m1, m2, m3) if n is not leader)
    follower.process_service(
        "--name",
        "talker",
        "sh",
        "-c",
        "echo hello from the task; exec sleep 3600",
    )

    def logged() -> str:
        result = follower.cli("service", "logs", "talker", check=False)
        return result.returncode == 0 and "hello from the task" in result.stdout and result.stdout

    out = wait_for(logged, what="the task's line read through a follower")
    assert out.startswith("talker.1.") and out.rstrip().endswith("| hello from the task")
