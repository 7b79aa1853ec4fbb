"""Autolock with real daemons: three managers keep their keys sealed under the swarm's unlock
key; one restarted comes up locked (and holds no key in the clear) until given the key, by
Docker's own CLI; a rotated key locks out the old one; autolock off, it restarts unlocked.
A service runs on the other two managers throughout, its tasks untouched. Addresses
127.0.47.x."""

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from shoal.ca.sealed_key import WrongKEK, is_sealed, unseal
from shoal.ca.unlock_key import human_readable, new_unlock_key, parse_human_readable
from shoal.manager.consensus.raft_keys import InvalidUnlockKey, RaftKeys
from tests.e2e.harness import Node, kill_tasks_under, wait_for

pytestmark = pytest.mark.e2e

DOCKER = shutil.which("docker")
LOCKED = (
    'Swarm is encrypted and needs to be unlocked before it can be used. Please use "docker '
    'swarm unlock" to unlock it.'
)
# Markers of a private key in the clear (PKCS#8, SEC1).
PLAIN_KEY_MARKS = (b"-----BEGIN PRIVATE KEY-----", b"-----BEGIN EC PRIVATE KEY-----")


def docker(node: Node, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    assert DOCKER is not None
    env = {**os.environ, "DOCKER_HOST": f"unix://{node.socket}", "DOCKER_CLI_HINTS": "false"}
    return subprocess.run(
        [DOCKER, *args], input=stdin or "", capture_output=True, text=True, timeout=60, env=env
    )


def node_key_file(node: Node) -> Path:
    return node.state_dir / "swarm" / "certificates" / "swarm-node.key"


def raft_keys_file(node: Node) -> Path:
    return node.state_dir / "swarm" / "manager" / "raft-keys.json"


def sealed_under(node: Node, key: str) -> bool:
    """Both of the manager's keys at rest are sealed, and ``key`` opens them."""
    kek = parse_human_readable(key)
    pem = node_key_file(node).read_bytes()
    if not is_sealed(pem) or not RaftKeys.is_sealed(raft_keys_file(node)):
        return False
    try:
        unseal(pem, kek)
        RaftKeys.load(raft_keys_file(node), kek)
    except (WrongKEK, InvalidUnlockKey):
        return False
    return True


def plain(node: Node) -> bool:
    return not is_sealed(node_key_file(node).read_bytes()) and not RaftKeys.is_sealed(
        raft_keys_file(node)
    )


def no_key_in_the_clear(node: Node) -> None:
    for path in node.state_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(mark in data for mark in PLAIN_KEY_MARKS), path


def state(node: Node) -> str:
    return node.get("/info")["Swarm"]["LocalNodeState"]


def manager_status(via: Node) -> dict[str, str]:
    """hostname -> "Leader" or its reachability, of every manager."""
    out = {}
    for n in via.get("/nodes"):
        ms = n.get("ManagerStatus")
        if ms is not None:
            out[n["Description"]["Hostname"]] = "Leader" if ms.get("Leader") else ms["Reachability"]
    return out


def all_up(via: Node, count: int) -> bool:
    """``count`` managers, one of them leading and the others reachable (any may lead: a
    restarted manager may win an election)."""
    return sorted(manager_status(via).values()) == ["Leader", *["reachable"] * (count - 1)]


class Swarm:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.nodes: list[Node] = []

    def add(self, name: str) -> Node:
        node = Node(name=name, host=f"127.0.47.{len(self.nodes) + 1}", root=self.root / name)
        self.nodes.append(node)
        node.start()
        return node

    def running(self, via: Node, service: str) -> dict[str, str]:
        """task ID -> node ID of the service's running tasks."""
        filters = quote(json.dumps({"service": [service], "desired-state": ["running"]}))
        return {
            t["ID"]: t["NodeID"]
            for t in via.get(f"/tasks?filters={filters}")
            if t["Status"]["State"] == "running"
        }

    def close(self) -> None:
        for node in self.nodes:
            node.stop()
        kill_tasks_under(self.root)


@pytest.fixture
def swarm(short_tmp: Path) -> Iterator[Swarm]:
    s = Swarm(short_tmp)
    try:
        yield s
    finally:
        s.close()


@pytest.mark.skipif(DOCKER is None, reason="no docker CLI on this machine")
def test_autolocked_managers_lock_on_restart_and_unlock_with_the_key(swarm: Swarm) -> None:
    m1, m2, m3 = swarm.add("m1"), swarm.add("m2"), swarm.add("m3")
    init = m1.cli("swarm", "init", "--autolock", "--advertise-addr", m1.host).stdout
    unlock_key = docker(m1, "swarm", "unlock-key", "-q")
    assert unlock_key.returncode == 0, unlock_key.stderr
    key = unlock_key.stdout.strip()
    assert init.endswith(
        "To add a manager to this swarm, run 'shoal swarm join-token manager' and follow the "
        "instructions.\n"
        "To unlock a swarm manager after it restarts, run the `shoal swarm unlock`\n"
        "command and provide the following key:\n\n"
        f"    {key}\n\n"
        "Remember to store this key in a password manager, since without it you\n"
        "will not be able to restart the manager.\n"
    )
    # Docker's CLI prints shoal's key as shoal's CLI does.
    shown = docker(m1, "swarm", "unlock-key")
    assert shown.stdout == m1.cli("swarm", "unlock-key").stdout.replace(
        "`shoal swarm unlock`", "`docker swarm unlock`"
    )
    assert "UnlockKeys" not in json.dumps(m1.get("/swarm"))
    token = m1.cli("swarm", "join-token", "-q", "manager").stdout.strip()
    for node in (m2, m3):
        node.cli("swarm", "join", "--token", token, m1.addr)
    wait_for(lambda: all_up(m1, 3), what="three managers")
    for node in (m1, m2, m3):
        wait_for(lambda node=node: sealed_under(node, key), what=f"{node.name} sealed")

    # A service on m1 and m2 runs throughout: m3 is the one restarted.
    m1.process_service(
        "--name", "keep", "--replicas", "2", "--constraint", "node.hostname!=m3", "sleep", "1000"
    )
    tasks = wait_for(lambda: (r := swarm.running(m1, "keep")) and len(r) == 2 and r)

    def still_running() -> None:
        assert swarm.running(m1, "keep") == tasks

    # Restarted, m3 is locked: it tells so, serves nothing, and its keys stay sealed.
    m3.stop()
    m3.start()
    assert state(m3) == "locked"
    info = m3.get("/info")["Swarm"]
    assert info["Error"] == LOCKED and info["NodeID"] == "" and not info["ControlAvailable"]
    assert m3.api("GET", "/nodes").status == 503
    assert m3.api("GET", "/nodes").body == {"message": LOCKED}
    listed = docker(m3, "node", "ls")
    assert (listed.returncode, listed.stderr) == (1, f"Error response from daemon: {LOCKED}\n")
    assert " Swarm: locked\n Runtimes:" in m3.cli("info").stdout
    no_key_in_the_clear(m3)
    wait_for(lambda: manager_status(m1)["m3"] == "unreachable", what="m3 unreachable")
    still_running()

    # A wrong key is refused and changes nothing.
    wrong = docker(m3, "swarm", "unlock", stdin=human_readable(new_unlock_key()) + "\n")
    assert (wrong.returncode, wrong.stderr) == (
        1,
        "Error response from daemon: swarm could not be unlocked: invalid key provided\n",
    )
    garbled = docker(m3, "swarm", "unlock", stdin="SWMKEY-1-\n")
    assert garbled.returncode == 1
    not_a_key = m3.api("POST", "/swarm/unlock", {"UnlockKey": "nonsense"})
    assert (not_a_key.status, not_a_key.body) == (400, {"message": "invalid key string"})
    assert state(m3) == "locked"
    assert sealed_under(m3, key)

    # The right key unlocks it, and it rejoins its cluster as a manager.
    right = docker(m3, "swarm", "unlock", stdin=key + "\n")
    assert (right.returncode, right.stdout, right.stderr) == (0, "", "")
    assert state(m3) == "active"
    wait_for(lambda: all_up(m1, 3), what="m3 reachable again")
    assert {s["Spec"]["Name"] for s in m3.get("/services")} == {"keep"}
    again = docker(m3, "swarm", "unlock", stdin=key + "\n")
    assert (again.returncode, again.stderr) == (1, "Error: swarm is not locked\n")
    still_running()

    # A rotated key: every manager re-seals under it (with a new raft data key).
    dek_before = RaftKeys.load(raft_keys_file(m3), parse_human_readable(key)).current.id
    rotated = docker(m1, "swarm", "unlock-key", "--rotate")
    assert rotated.returncode == 0, rotated.stderr
    assert rotated.stdout.startswith("Successfully rotated manager unlock key.\nTo unlock a swarm")
    new_key = docker(m1, "swarm", "unlock-key", "-q").stdout.strip()
    assert new_key != key and new_key in rotated.stdout
    # Another manager shows it too, once it has applied the change (reads are local).
    wait_for(lambda: docker(m2, "swarm", "unlock-key", "-q").stdout.strip() == new_key)
    for node in (m1, m2, m3):
        wait_for(lambda node=node: sealed_under(node, new_key), what=f"{node.name} resealed")
    wait_for(
        lambda: (
            (k := RaftKeys.load(raft_keys_file(m3), parse_human_readable(new_key))).pending is None
            and k.current.id != dek_before
        ),
        what="m3's raft data key rotated",
    )
    m3.stop()
    m3.start()
    assert state(m3) == "locked"
    old = docker(m3, "swarm", "unlock", stdin=key + "\n")
    assert old.returncode == 1 and "invalid key provided" in old.stderr
    assert state(m3) == "locked"
    new = docker(m3, "swarm", "unlock", stdin=new_key + "\n")
    assert new.returncode == 0, new.stderr
    wait_for(lambda: all_up(m1, 3), what="m3 back after rotation")
    still_running()

    # Autolock off: the keys are unsealed, the next restart comes up unlocked.
    assert m1.cli("swarm", "update", "--autolock=false").stdout == "Swarm updated.\n"
    gone = docker(m1, "swarm", "unlock-key")
    assert (gone.returncode, gone.stderr) == (1, "no unlock key is set\n")
    for node in (m1, m2, m3):
        wait_for(lambda node=node: plain(node), what=f"{node.name} unsealed")
    m3.stop()
    m3.start()
    assert state(m3) == "active"
    wait_for(lambda: all_up(m1, 3), what="m3 back unlocked")
    still_running()

    # On again: a new key, shown by `swarm update` as Docker's CLI shows it.
    on_again = m1.cli("swarm", "update", "--autolock=true").stdout
    newest = m1.cli("swarm", "unlock-key", "-q").stdout.strip()
    assert newest not in (key, new_key)
    assert on_again == (
        "Swarm updated.\n"
        "To unlock a swarm manager after it restarts, run the `shoal swarm unlock`\n"
        "command and provide the following key:\n\n"
        f"    {newest}\n\n"
        "Remember to store this key in a password manager, since without it you\n"
        "will not be able to restart the manager.\n"
    )
    assert m1.cli("swarm", "update", "--autolock=true").stdout == "Swarm updated.\n"


@pytest.mark.skipif(DOCKER is None, reason="no docker CLI on this machine")
def test_workers_are_not_locked_and_a_promoted_one_is(swarm: Swarm) -> None:
    """Docker's CLI turns autolock on at init. A worker keeps its key plain and restarts
    unlocked; promoted, it seals its keys (and restarts locked); demoted, it unseals them."""
    m1, w1 = swarm.add("m1"), swarm.add("w1")
    init = docker(m1, "swarm", "init", "--autolock", "--advertise-addr", m1.host)
    assert init.returncode == 0, init.stderr
    key = docker(m1, "swarm", "unlock-key", "-q").stdout.strip()
    assert f"command and provide the following key:\n\n    {key}\n\n" in init.stdout
    wait_for(lambda: sealed_under(m1, key), what="m1 sealed")
    token = m1.cli("swarm", "join-token", "-q", "worker").stdout.strip()
    w1.cli("swarm", "join", "--token", token, m1.addr)
    w1.stop()
    w1.start()
    assert state(w1) == "active"
    assert not is_sealed(node_key_file(w1).read_bytes())
    unlock = docker(w1, "swarm", "unlock", stdin=key + "\n")
    assert (unlock.returncode, unlock.stderr) == (1, "Error: swarm is not locked\n")

    m1.cli("node", "promote", "w1")
    wait_for(lambda: raft_keys_file(w1).exists() and sealed_under(w1, key), what="w1 sealed")
    w1.stop()
    w1.start()
    assert state(w1) == "locked"
    assert docker(w1, "swarm", "unlock", stdin=key + "\n").returncode == 0
    wait_for(lambda: all_up(m1, 2), what="w1 a manager again")

    # Two managers that just elected a leader: a demotion may meet the election's end.
    wait_for(lambda: m1.cli("node", "demote", "w1", check=False).returncode == 0, what="demote")
    wait_for(lambda: not is_sealed(node_key_file(w1).read_bytes()), what="w1 unsealed")
    assert not raft_keys_file(w1).exists()
    w1.stop()
    w1.start()
    assert state(w1) == "active"


def task_processes(root: Path) -> list[int]:
    """Task processes started from under ``root`` (as kill_tasks_under finds them), shims
    aside."""
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        try:
            cmdline = proc.info["cmdline"] or []
            if "sleep" in cmdline and (proc.info["cwd"] or "").startswith(str(root)):
                found.append(proc.pid)
        except psutil.Error:
            continue
    return found


def test_a_locked_manager_forced_to_leave_stops_its_tasks(swarm: Swarm) -> None:
    m1 = swarm.add("m1")
    m1.cli("swarm", "init", "--autolock", "--advertise-addr", m1.host)
    m1.process_service("--name", "here", "sleep", "1001")
    wait_for(lambda: len(swarm.running(m1, "here")) == 1, what="task running")
    wait_for(lambda: task_processes(m1.root), what="its process")
    m1.stop()
    m1.start()
    assert state(m1) == "locked"
    assert task_processes(m1.root)  # tasks outlive their daemon, locked or not
    refused = m1.cli("swarm", "leave", check=False)
    assert refused.returncode == 1
    assert refused.stderr == (
        "Error response from daemon: Swarm is encrypted and locked. Please unlock it first "
        "or use `--force` to ignore this message.\n"
    )
    assert m1.cli("swarm", "leave", "--force").stdout == "Node left the swarm.\n"
    assert state(m1) == "inactive"
    wait_for(lambda: not task_processes(m1.root), what="its task stopped")
