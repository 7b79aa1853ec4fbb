"""Managers' raft stores are encrypted at rest, as real daemons write them: a three-manager
swarm holding a service whose environment carries a marker, a network whose label does, and
the root CA key; no file under any node's state directory (raft.db, its -wal and -shm,
snapshots, everything) holds the marker or the key's PEM body, before and after snapshots
(taken by the leader, and received by managers that join), and a restarted manager reads its
store. Addresses 127.0.46.x."""

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from shoal.manager.consensus.raft_keys import RaftKeys
from shoal.raft.storage import SQLiteStorage
from tests.e2e.harness import Node, kill_tasks_under, wait_for

pytestmark = pytest.mark.e2e

MARKER = "shoal-marker-5d41402abc4b2a76"


class Managers:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.nodes: list[Node] = []

    def add(self, name: str) -> Node:
        node = Node(name=name, host=f"127.0.46.{len(self.nodes) + 1}", root=self.root / name)
        self.nodes.append(node)
        node.start()
        return node

    def join(self, node: Node, via: Node) -> None:
        token = via.cli("swarm", "join-token", "-q", "manager").stdout.strip()
        node.cli("swarm", "join", "--token", token, via.addr)

    def reachable(self, via: Node) -> list[str]:
        return sorted(
            "Leader" if n["ManagerStatus"].get("Leader") else n["ManagerStatus"]["Reachability"]
            for n in via.get("/nodes")
            if n.get("ManagerStatus")
        )

    def close(self) -> None:
        for node in self.nodes:
            node.stop()
        kill_tasks_under(self.root)


@pytest.fixture
def managers(short_tmp: Path) -> Iterator[Managers]:
    m = Managers(short_tmp)
    try:
        yield m
    finally:
        m.close()


def files_holding(nodes: list[Node], needles: list[bytes]) -> list[str]:
    """Every file under the nodes' state directories that holds any of ``needles``."""
    found = []
    for node in nodes:
        for path in sorted(node.state_dir.rglob("*")):
            if not path.is_file():
                continue
            data = path.read_bytes()
            found += [f"{path}: {n[:24]!r}" for n in needles if n in data]
    return found


def raft_files(node: Node) -> list[str]:
    raft = node.state_dir / "swarm" / "manager"
    return sorted(str(p.relative_to(raft)) for p in raft.rglob("*") if p.is_file())


def manager_dir(node: Node) -> Path:
    (keys,) = node.state_dir.rglob("raft-keys.json")
    return keys.parent


def decrypted_raft(node: Node, into: Path) -> bytes:
    """What a stopped manager's raft store holds, opened with its own keys (from a copy):
    every entry's data and the snapshot, in plaintext."""
    shutil.copytree(manager_dir(node), into)
    keys = RaftKeys.load(into / "raft-keys.json", None)
    storage = SQLiteStorage(into / "raft", cipher=keys.cipher)
    try:
        state = storage.load()
    finally:
        storage.close()
    parts = [e.data for e in state.entries]
    if state.snapshot is not None:
        parts.append(state.snapshot.data)
    return b"\n".join(parts)


def pem_body_lines(raw: bytes) -> list[bytes]:
    """The base64 lines of the private key PEM in ``raw`` (JSON, so newlines are \\n)."""
    match = re.search(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----(.+?)-----END", raw)
    assert match is not None, "the raft store holds no private key"
    lines = [line for line in re.split(rb"\\n|\n", match.group(1)) if len(line) >= 16]
    assert lines
    return lines


def update_raft_settings(node: Node, snapshot_interval: int, keep: int) -> None:
    node.cli("swarm", "update", "--snapshot-interval", str(snapshot_interval))
    swarm = node.get("/swarm")
    spec = swarm["Spec"]
    spec["Raft"]["LogEntriesForSlowFollowers"] = keep  # API only, as in Docker
    resp = node.api("POST", f"/swarm/update?version={swarm['Version']['Index']}", spec)
    assert resp.status == 200, resp.body


def create_fillers(via: Node, numbers: range) -> None:
    for i in numbers:
        body = {
            "Name": f"filler{i}",
            "Labels": {"note": f"{MARKER}-filler"},
            "Mode": {"Replicated": {"Replicas": 0}},
            "TaskTemplate": {"Runtime": "process", "ContainerSpec": {"Image": "sleep"}},
        }
        resp = via.api("POST", "/services/create", body)
        assert resp.status == 201, resp.body


def test_no_file_of_any_manager_holds_raft_data_in_plaintext(managers: Managers, short_tmp):
    m1 = managers.add("m1")
    m1.cli("swarm", "init", "--advertise-addr", m1.host)
    # Snapshots soon, and no entries kept behind them: the managers joining later are sent
    # a snapshot, which they write themselves.
    update_raft_settings(m1, snapshot_interval=20, keep=0)
    # No task: a task's spec is kept by the agent of its node too (swarm/worker/tasks.json,
    # as Docker keeps it in worker.db), which is not the raft store this test is about.
    m1.process_service(
        "--name", "marked", "--replicas", "0", "--env", f"TOKEN={MARKER}-env", "sleep", "3600"
    )
    m1.cli("network", "create", "-d", "overlay", "--label", f"owner={MARKER}-label", "marked-net")
    create_fillers(m1, range(25))
    wait_for(lambda: list((manager_dir(m1) / "raft" / "snapshots").iterdir()), what="a snapshot")

    m2, m3 = managers.add("m2"), managers.add("m3")
    managers.join(m2, m1)
    managers.join(m3, m2)
    nodes = [m1, m2, m3]
    wait_for(
        lambda: managers.reachable(m1) == ["Leader", "reachable", "reachable"],
        what="three managers, one leader",
    )
    for joined in (m2, m3):
        wait_for(
            lambda n=joined: list((manager_dir(n) / "raft" / "snapshots").iterdir()),
            what=f"{joined.name} stores the snapshot it received",
        )
        wait_for(lambda n=joined: "marked" in {s["Spec"]["Name"] for s in n.get("/services")})
    assert f"{MARKER}-env" in json.dumps(m3.get("/services/marked"))

    marker = MARKER.encode()
    assert files_holding(nodes, [marker]) == []

    # The root CA key is in every manager's raft store (the control: opened with the
    # manager's own keys, it is there), and in no file as such.
    m2.stop()
    plain = decrypted_raft(m2, short_tmp / "m2-copy")
    assert marker in plain
    key_lines = pem_body_lines(plain)
    assert files_holding(nodes, [marker, *key_lines]) == [], raft_files(m2)

    # A manager restarted reads its store (and writes more, encrypted).
    m2.start()
    wait_for(lambda: managers.reachable(m1) == ["Leader", "reachable", "reachable"])
    filters = quote(json.dumps({"name": ["marked"]}))
    wait_for(lambda: [s["Spec"]["Name"] for s in m2.get(f"/services?filters={filters}")])
    create_fillers(m2, range(25, 50))  # past another snapshot on every manager
    wait_for(lambda: len(m3.get("/services")) == 51, what="every write on every manager")
    assert files_holding(nodes, [marker, *key_lines]) == []
