"""The mesh across hosts: network namespaces on one bridge, each with its own address.

Hosts 1 and 2 run the three tasks (b1, b2 on host 1; b3 on host 2); every host runs the
mesh; host 3 runs no task; host 4 is a client machine outside the cluster. Both data
paths. Needs root (and nft for the kernel path); skipped, with the reason, otherwise.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.network.routing import Backend, PortRoute, RoutingTable
from tests.integration.network.netns import Testbed, why_no_netns, why_no_nft

APPS = Path(__file__).parent / "apps"
PORT = 8080
_no_netns = why_no_netns()
pytestmark = [pytest.mark.netns, pytest.mark.skipif(_no_netns is not None, reason=str(_no_netns))]

DATA_PATHS = [
    "userspace",
    pytest.param(
        "nftables",
        marks=pytest.mark.skipif(why_no_nft() is not None, reason=str(why_no_nft())),
    ),
]

TASKS = {"b1": (1, 9001), "b2": (1, 9002), "b3": (2, 9001)}


class MeshNode:
    """``python -m shoal.network.meshnode`` inside a namespace."""

    def __init__(self, bed: Testbed, host: int, *args: str) -> None:
        self.proc = bed.popen(
            host,
            [sys.executable, "-m", "shoal.network.meshnode", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.hello = self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if not line:
            raise RuntimeError(f"mesh node exited ({self.proc.wait()})")
        return json.loads(line)

    @property
    def data_path(self) -> str:
        return self.hello["data_path"]

    def apply(self, table: RoutingTable) -> dict:
        self.proc.stdin.write(json.dumps(table.to_json()) + "\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        reply = self._read()
        assert "error" not in reply, reply
        return reply

    def stop(self) -> int:
        self.proc.stdin.close()  # type: ignore[union-attr]
        return self.proc.wait(timeout=10)


def start_task(bed: Testbed, name: str, mode: str = "name") -> subprocess.Popen:
    host, port = TASKS[name]
    p = bed.popen(
        host,
        [sys.executable, str(APPS / "backend.py"), "--name", name, "--host", bed.addr(host),
         "--port", str(port), "--mode", mode],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert p.stdout.readline().strip() == "ready"  # type: ignore[union-attr]
    return p


def table(bed: Testbed, *tasks: str, protocol: str = "tcp") -> RoutingTable:
    eps = tuple(Backend(bed.addr(TASKS[t][0]), TASKS[t][1]) for t in tasks)
    return RoutingTable.of([PortRoute(protocol, PORT, "web", eps)])  # type: ignore[arg-type]


def client(bed: Testbed, host: int, target: int | str, *args: str) -> dict:
    addr = bed.addr(target) if isinstance(target, int) else target
    r = bed.run(
        host,
        [sys.executable, str(APPS / "client.py"), addr, str(PORT), *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture
def bed() -> Iterator[Testbed]:
    with Testbed(hosts=4) as b:
        yield b


def mesh_on_nodes(bed: Testbed, data_path: str) -> list[MeshNode]:
    nodes = [
        MeshNode(bed, h, "--data-path", data_path, "--address", bed.addr(h)) for h in (1, 2, 3)
    ]
    assert [n.data_path for n in nodes] == [data_path] * 3
    return nodes


@pytest.mark.parametrize("data_path", DATA_PATHS)
def test_every_node_answers_and_spreads_over_all_tasks(bed: Testbed, data_path: str) -> None:
    for name in TASKS:
        start_task(bed, name)
    nodes = mesh_on_nodes(bed, data_path)
    for n in nodes:
        assert n.apply(table(bed, *TASKS))["errors"] == {}
    # From a client machine to the node that runs no task.
    seen = client(bed, 4, 3, "--count", "30")
    assert seen["failures"] == []
    assert set(seen["names"]) == set(TASKS)
    # Every node answers.
    for h in (1, 2):
        assert client(bed, 4, h, "--count", "3")["failures"] == []
    # On the node itself, to its own address (the output hook, for nftables).
    assert set(client(bed, 3, 3, "--count", "9")["names"]) == set(TASKS)
    # From a host that runs tasks, through another node.
    assert set(client(bed, 1, 3, "--count", "9")["names"]) == set(TASKS)
    for n in nodes:
        assert n.stop() == 0


@pytest.mark.parametrize("data_path", DATA_PATHS)
def test_udp_across_hosts(bed: Testbed, data_path: str) -> None:
    for name in TASKS:
        start_task(bed, name)
    nodes = mesh_on_nodes(bed, data_path)
    for n in nodes:
        n.apply(table(bed, *TASKS, protocol="udp"))
    seen = client(bed, 4, 3, "--udp", "--count", "9")
    assert seen["failures"] == []
    assert set(seen["names"]) == set(TASKS)
    for n in nodes:
        assert n.stop() == 0


@pytest.mark.parametrize("data_path", DATA_PATHS)
def test_tasks_leaving_fail_no_client_that_retries_once(bed: Testbed, data_path: str) -> None:
    tasks = {name: start_task(bed, name) for name in TASKS}
    nodes = mesh_on_nodes(bed, data_path)
    for n in nodes:
        n.apply(table(bed, *TASKS))
    c = bed.popen(
        4,
        [sys.executable, str(APPS / "client.py"), bed.addr(3), str(PORT), "--retry",
         "--until-eof"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert c.stdout.readline().strip() == "started"  # type: ignore[union-attr]
    # b3 dies (its node went down) before the managers take it out of the rotation.
    tasks["b3"].kill()
    tasks["b3"].wait()
    time.sleep(0.3)
    for n in nodes:
        n.apply(table(bed, "b1", "b2"))
    time.sleep(0.2)
    # b2 is drained: out of the rotation first, then stopped.
    for n in nodes:
        n.apply(table(bed, "b1"))
    time.sleep(0.2)
    tasks["b2"].terminate()
    tasks["b2"].wait()
    time.sleep(0.3)
    c.stdin.close()  # type: ignore[union-attr]
    result = json.loads(c.stdout.readline())  # type: ignore[union-attr]
    assert result["failures"] == []
    assert "b1" in result["names"]
    assert client(bed, 4, 3, "--count", "5")["names"] == {"b1": 5}
    for n in nodes:
        assert n.stop() == 0


@pytest.mark.skipif(why_no_nft() is not None, reason=str(why_no_nft()))
def test_auto_picks_nftables_on_a_real_address_and_userspace_on_loopback(bed: Testbed) -> None:
    assert MeshNode(bed, 1, "--address", bed.addr(1)).data_path == "nftables"
    node = MeshNode(bed, 2, "--address", "127.0.0.1")
    assert node.data_path == "userspace"
    assert "loopback" in node.hello["reason"]


@pytest.mark.skipif(why_no_nft() is not None, reason=str(why_no_nft()))
def test_kernel_path_on_all_addresses_serves_loopback_through_its_proxy(bed: Testbed) -> None:
    for name in TASKS:
        start_task(bed, name)
    node = MeshNode(bed, 3, "--data-path", "nftables")  # every address of host 3
    node.apply(table(bed, *TASKS))
    assert set(client(bed, 3, 3, "--count", "6")["names"]) == set(TASKS)
    assert set(client(bed, 3, "127.0.0.1", "--count", "6")["names"]) == set(TASKS)
    assert set(client(bed, 4, 3, "--count", "6")["names"]) == set(TASKS)
    assert node.stop() == 0


def nft_tables(bed: Testbed, host: int) -> str:
    r = bed.run(host, ["nft", "list", "tables"], capture_output=True, text=True, check=True)
    return r.stdout


@pytest.mark.skipif(why_no_nft() is not None, reason=str(why_no_nft()))
@pytest.mark.parametrize("how", ["end of input", "SIGTERM"])
def test_kernel_path_removes_its_table_on_stop(bed: Testbed, how: str) -> None:
    node = MeshNode(bed, 3, "--data-path", "nftables", "--address", bed.addr(3))
    node.apply(table(bed, *TASKS))
    listing = bed.run(3, ["nft", "list", "table", "ip", "shoal"], capture_output=True, text=True)
    assert "dnat ip to numgen inc mod 3" in listing.stdout
    if how == "SIGTERM":
        node.proc.terminate()
        assert node.proc.wait(timeout=10) == 0
    else:
        assert node.stop() == 0
    assert "shoal" not in nft_tables(bed, 3)


@pytest.mark.skipif(why_no_nft() is not None, reason=str(why_no_nft()))
def test_kernel_path_replaces_a_table_left_by_a_crash(bed: Testbed) -> None:
    node = MeshNode(bed, 3, "--data-path", "nftables", "--address", bed.addr(3))
    node.apply(table(bed, *TASKS))
    node.proc.kill()
    node.proc.wait()
    assert "table ip shoal" in nft_tables(bed, 3)  # left behind
    start_task(bed, "b1")
    node = MeshNode(bed, 3, "--data-path", "nftables", "--address", bed.addr(3))
    node.apply(table(bed, "b1"))
    assert client(bed, 4, 3, "--count", "3")["names"] == {"b1": 3}
    assert node.stop() == 0
    assert "shoal" not in nft_tables(bed, 3)
