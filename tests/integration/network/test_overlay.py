"""The overlay data plane across hosts of our own: two (or three) network namespaces on a
bridge, a node's data plane in each (python -m shoal.network.overlay.tool), tasks in task
namespaces attached to overlay networks, servers and clients in those tasks.

Needs root (ip netns, nsenter), the vxlan and bridge modules and nft; skipped with the
reason otherwise.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from shoal.network.overlay import open_socket_in_namespace
from tests.integration.network.netns import why_no_netns, why_no_nft
from tests.integration.network.overlay_bed import (
    APPS,
    OverlayBed,
    host_links,
    host_tables,
    netns_names,
)

_why = why_no_netns() or why_no_nft()
pytestmark = [pytest.mark.netns, pytest.mark.skipif(_why is not None, reason=str(_why))]


def network(i: int, internal: bool = False) -> dict[str, Any]:
    return {
        "id": f"net{i}xxxxxxxxxxxxxxxxxxxx",
        "name": f"net{i}",
        "subnet": f"10.10.{i}.0/24",
        "gateway": f"10.10.{i}.1",
        "vni": 4100 + i,
        "internal": internal,
    }


NET1, NET2 = network(1), network(2)


@pytest.fixture
def bed() -> Iterator[OverlayBed]:
    b = OverlayBed(hosts=3)
    with b:
        yield b


def two_nodes(
    bed: OverlayBed, *nets: dict[str, Any], args: tuple[str, ...] = ()
) -> tuple[Any, Any]:
    a, b = bed.node(1, args=args), bed.node(2, args=args)
    for n in (a, b):
        for net in nets:
            assert n.ensure(net)["created"]
    return a, b


def serving_pair(bed: OverlayBed, a: Any, b: Any) -> tuple[str, str]:
    """Task a1 on node a (10.10.1.3) and b1 on node b (10.10.1.4), on NET1, each the
    other's peer, each serving its name."""
    ta, tb = a.task("a1"), b.task("b1")
    a.attach(ta, NET1, "10.10.1.3")
    b.attach(tb, NET1, "10.10.1.4")
    a.peers(NET1, ("10.10.1.4", b))
    b.peers(NET1, ("10.10.1.3", a))
    bed.serve(ta, "a1", "10.10.1.3")
    bed.serve(tb, "b1", "10.10.1.4")
    return ta, tb


def test_tasks_on_two_hosts_reach_each_other_by_overlay_address(bed: OverlayBed) -> None:
    a, b = two_nodes(bed, NET1)
    ta, tb = serving_pair(bed, a, b)
    assert bed.answers(ta, "10.10.1.4", 3) == {"b1": 3}
    assert bed.answers(tb, "10.10.1.3", 3) == {"a1": 3}
    assert bed.answers(ta, "10.10.1.4", 3, "--udp") == {"b1": 3}
    # A frame larger than the underlay's MTU would allow unencapsulated still gets there:
    # the task's MTU (1450) leaves room for VXLAN's 50 bytes.
    r = subprocess.run(
        ["nsenter", f"--net={ta}", sys.executable, "-c",
         "import socket; s = socket.create_connection(('10.10.1.4', 8000), timeout=5); "
         "f = s.makefile('rb'); f.readline(); s.sendall(b'x' * 100000 + b'\\n'); "
         "print(len(f.readline()))"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.stdout.strip() == "100001", r.stderr


def test_networks_are_isolated(bed: OverlayBed) -> None:
    a, b = two_nodes(bed, NET1, NET2)
    t1 = a.task("on1")
    t12 = a.task("on12")  # on both networks
    t2 = b.task("on2")
    t2local = a.task("on2local")
    a.attach(t1, NET1, "10.10.1.3")
    a.attach(t12, NET1, "10.10.1.4")
    a.attach(t12, NET2, "10.10.2.4", "eth1")
    a.attach(t2local, NET2, "10.10.2.6")
    b.attach(t2, NET2, "10.10.2.5")
    b.peers(NET2, ("10.10.2.4", a), ("10.10.2.6", a))
    a.peers(NET2, ("10.10.2.5", b))
    bed.serve(t2, "on2", "10.10.2.5")
    bed.serve(t2local, "on2local", "10.10.2.6")
    assert bed.answers(t12, "10.10.2.5") == {"on2": 1}
    assert bed.answers(t12, "10.10.2.6") == {"on2local": 1}
    # A task on net1 only has no way to net2's addresses, on this host or the other.
    assert "unreachable" in bed.unreachable(t1, "10.10.2.5")
    assert "unreachable" in bed.unreachable(t1, "10.10.2.6")


@pytest.mark.parametrize("engine", ["library", "nft"])
def test_vip_spreads_connections_over_backends_on_both_hosts(bed: OverlayBed, engine: str) -> None:
    a, b = two_nodes(bed, NET1, args=("--vip-engine", engine))
    client, a2 = a.task("client"), a.task("a2")
    b1, b2 = b.task("b1"), b.task("b2")
    a.attach(client, NET1, "10.10.1.3")
    a.attach(a2, NET1, "10.10.1.4")
    b.attach(b1, NET1, "10.10.1.5")
    b.attach(b2, NET1, "10.10.1.6")
    a.peers(NET1, ("10.10.1.5", b), ("10.10.1.6", b))
    b.peers(NET1, ("10.10.1.3", a), ("10.10.1.4", a))
    for path, name, addr in [(a2, "a2", "10.10.1.4"), (b1, "b1", "10.10.1.5"),
                             (b2, "b2", "10.10.1.6")]:  # fmt: skip
        bed.serve(path, name, addr)
    vip, empty_vip = "10.10.1.2", "10.10.1.250"
    vips = {vip: ["10.10.1.4", "10.10.1.5", "10.10.1.6"], empty_vip: []}
    for task in (client, a2):
        assert a.do(op="vips", netns=task, vips=vips)["engine"] == engine
    seen = bed.answers(client, vip, 30)
    assert seen == {"a2": 10, "b1": 10, "b2": 10}  # round robin
    assert set(bed.answers(client, vip, 6, "--udp")) == {"a2", "b1", "b2"}
    # A backend calling its own service may be given itself, and gets its answer.
    assert set(bed.answers(a2, vip, 6)) == {"a2", "b1", "b2"}
    # No backends: refused at once, as by IPVS: TCP's connect is refused, UDP's send fails
    # with EPERM (the datagram is dropped in the output hook, as IPVS drops it there).
    assert "ConnectionRefused" in bed.unreachable(client, empty_vip)
    assert "PermissionError" in bed.unreachable(client, empty_vip, "--udp")
    # Backends change: the table is replaced.
    a.do(op="vips", netns=client, vips={vip: ["10.10.1.6"], empty_vip: ["10.10.1.5"]})
    assert bed.answers(client, vip, 4) == {"b2": 4}
    assert bed.answers(client, empty_vip, 2) == {"b1": 2}


def test_vip_tables_follow_a_task_namespace_made_again_under_its_name(bed: OverlayBed) -> None:
    """The library engine keeps a context per namespace path; a task namespace deleted and
    made again under the same name is another namespace, and must get the table."""
    a = bed.node(1, args=("--vip-engine", "library"))
    task = a.task("t1")
    a.do(op="vips", netns=task, vips={"10.10.1.2": ["10.10.1.3"]})
    a.do(op="remove_task_ns", name="t1")
    assert a.task("t1") == task
    a.do(op="vips", netns=task, vips={"10.10.1.2": ["10.10.1.4"]})
    listing = subprocess.run(
        ["nsenter", f"--net={task}", "nft", "list", "ruleset"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "10.10.1.4" in listing.stdout
    a.do(op="forget_vips", netns=task)


def test_removing_a_peer_makes_its_address_unreachable(bed: OverlayBed) -> None:
    a, b = two_nodes(bed, NET1)
    ta, tb = a.task("a1"), b.task("b1")
    a.attach(ta, NET1, "10.10.1.3")
    b.attach(tb, NET1, "10.10.1.4")
    b.peers(NET1, ("10.10.1.3", a))
    bed.serve(tb, "b1", "10.10.1.4")
    assert a.peers(NET1, ("10.10.1.4", b)) == 3  # neighbour, VXLAN FDB, bridge FDB
    assert a.peers(NET1, ("10.10.1.4", b)) == 0  # already so
    assert bed.answers(ta, "10.10.1.4") == {"b1": 1}
    assert a.peers(NET1) == 3
    bed.unreachable(ta, "10.10.1.4")
    a.peers(NET1, ("10.10.1.4", b))
    assert bed.answers(ta, "10.10.1.4") == {"b1": 1}
    # Someone else removed an entry the node remembers writing: the removal it plans
    # fails, and it converges from what the kernel has instead.
    sandbox = a.ensure(NET1)["path"]
    subprocess.run(
        ["nsenter", f"--net={sandbox}", "ip", "neigh", "del", "10.10.1.4", "dev", "vxlan0"],
        check=True,
    )
    a.peers(NET1)
    bed.unreachable(ta, "10.10.1.4")
    assert a.peers(NET1) == 0
    listing = subprocess.run(
        ["nsenter", f"--net={sandbox}", "bridge", "fdb", "show", "dev", "vxlan0"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "02:42:0a:0a:01:04" not in listing.stdout


def test_gateway_bridge_nat_and_internal_networks(bed: OverlayBed) -> None:
    internal = network(3, internal=True)
    a = bed.node(1)
    a.ensure(NET1)
    a.ensure(internal)
    gw = a.do(op="gateway")["address"]
    assert gw == "172.16.0.1/16"
    normal, other, inside = a.task("normal"), a.task("other"), a.task("inside")
    a.attach(normal, NET1, "10.10.1.3")
    a.attach(other, NET1, "10.10.1.4")
    a.attach(inside, internal, "10.10.3.3")
    # The caller decides: gateway interfaces for tasks on a non-internal network only.
    assert a.do(op="attach_gateway", netns=normal, ifname="eth1")["address"] == "172.16.0.2/16"
    assert a.do(op="attach_gateway", netns=other, ifname="eth1")["address"] == "172.16.0.3/16"
    # Host 3 is outside, with no route to 172.16.0.0/16: only masquerading gets an answer back.
    bed.serve_on_host(3, "outside")
    assert bed.answers(normal, bed.addr(3)) == {"outside": 1}
    # The node itself is reachable through the gateway bridge too.
    bed.serve_on_host(1, "node")
    assert bed.answers(normal, bed.addr(1)) == {"node": 1}
    assert "unreachable" in bed.unreachable(inside, bed.addr(3))
    routes = subprocess.run(
        ["nsenter", f"--net={inside}", "ip", "-j", "route", "show", "default"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(routes.stdout) == []
    # Ports of the gateway bridge are isolated from each other.
    bed.serve(other, "other", "172.16.0.3")
    bed.unreachable(normal, "172.16.0.3")
    # Addresses come back, and are found again from the bridge's ports.
    assert a.do(op="detach_gateway", netns=other, ifname="eth1")["removed"]
    a.kill()
    a.start()
    a.do(op="gateway")
    again = a.do(op="attach_gateway", netns=inside, ifname="eth1")["address"]
    assert again == "172.16.0.3/16"
    assert a.do(op="attach_gateway", netns=normal, ifname="eth1")["address"] == "172.16.0.2/16"


def test_a_restarted_node_adopts_what_it_finds(bed: OverlayBed) -> None:
    a, b = two_nodes(bed, NET1)
    ta, tb = a.task("a1"), b.task("b1")

    def converge() -> list[int]:
        done = [a.ensure(NET1)["commands"], a.attach(ta, NET1, "10.10.1.3")]
        done.append(a.peers(NET1, ("10.10.1.4", b)))
        a.do(op="gateway")
        a.do(op="attach_gateway", netns=ta, ifname="eth1")
        return done

    converge()
    b.attach(tb, NET1, "10.10.1.4")
    b.peers(NET1, ("10.10.1.3", a))
    bed.serve(tb, "b1", "10.10.1.4")
    # A client keeps making connections while node A crashes and restarts.
    c = subprocess.Popen(
        ["nsenter", f"--net={ta}", sys.executable, str(APPS / "client.py"), "10.10.1.4", "8000",
         "--until-eof"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert c.stdout.readline().strip() == "started"  # type: ignore[union-attr]
    a.kill()
    a.start()
    assert a.do(op="present")["networks"] == [NET1["id"][:10]]
    assert converge() == [0, 0, 0]  # nothing to do: all adopted
    assert not a.ensure(NET1)["created"]
    c.stdin.close()  # type: ignore[union-attr]
    result = json.loads(c.stdout.readline())  # type: ignore[union-attr]
    c.wait()
    assert result["failures"] == [] and result["first_failures"] == 0, result
    # What differs is repaired: another data-path port means another VXLAN device.
    a.kill()
    a.port = 4800
    a.start()
    assert a.ensure(NET1)["commands"] > 0
    b.peers(NET1, ("10.10.1.3", a))
    assert a.peers(NET1, ("10.10.1.4", b)) == 3  # the new device had no entries
    assert bed.answers(ta, "10.10.1.4") == {"b1": 1}


def test_teardown_leaves_nothing_behind(bed: OverlayBed) -> None:
    a, b = two_nodes(bed, NET1, NET2)
    ta = a.task("a1")
    a.attach(ta, NET1, "10.10.1.3")
    a.attach(ta, NET2, "10.10.2.3", "eth1")
    a.peers(NET1, ("10.10.1.4", b))
    a.do(op="gateway")
    a.do(op="attach_gateway", netns=ta, ifname="eth2")
    a.do(op="vips", netns=ta, vips={"10.10.1.2": ["10.10.1.4"]})
    assert len(netns_names(a.prefix)) == 3
    assert f"{a.prefix}gw" in host_links(bed, 1)
    assert f"{a.prefix}_gw" in host_tables(bed, 1)
    # The node's own way out: network by network, task by task, then the gateway.
    a.do(op="remove", network=NET1["id"])
    a.do(op="remove", network=NET2["id"])
    a.do(op="remove_task_ns", name="a1")
    a.do(op="remove_gateway")
    assert netns_names(a.prefix) == []
    assert [n for n in host_links(bed, 1) if n.startswith(a.prefix)] == []
    assert a.prefix not in host_tables(bed, 1)
    # Again: all of it is idempotent.
    a.do(op="remove", network=NET1["id"])
    a.do(op="remove_task_ns", name="a1")
    a.do(op="remove_gateway")
    # And the sweep, for a node that leaves.
    assert b.do(op="sweep")["gone"] == [f"netns {b.prefix}-{NET1['id'][:10]}",
                                          f"netns {b.prefix}-{NET2['id'][:10]}"]  # fmt: skip
    assert netns_names(b.prefix) == []
    # The VNIs and port are free again: the networks can be made anew.
    assert a.ensure(NET1)["created"]


def test_a_local_cluster_shares_one_namespace(bed: OverlayBed) -> None:
    """Two nodes in one network namespace, underlay 127.0.0.1 and 127.0.0.2, each with a
    data-path port of its own: the kernel hands the frame straight to the other VXLAN
    device (local bypass), and no UDP datagram is sent at all."""
    a = bed.node(1, local="127.0.0.1", port=4789)
    b = bed.node(1, local="127.0.0.2", port=4790)
    a.ensure(NET1)
    b.ensure(NET1)  # same VNI, another port: allowed
    ta, tb = serving_pair(bed, a, b)
    before = udp_datagrams(bed, 1)
    assert bed.answers(ta, "10.10.1.4", 3) == {"b1": 3}
    assert bed.answers(tb, "10.10.1.3", 3) == {"a1": 3}
    assert udp_datagrams(bed, 1) == before
    # Each node's gateway bridge finds a subnet the other's does not use.
    assert a.do(op="gateway")["address"] == "172.16.0.1/16"
    assert b.do(op="gateway")["address"] == "172.17.0.1/16"
    assert a.do(op="attach_gateway", netns=ta, ifname="eth1")["address"] == "172.16.0.2/16"
    assert b.do(op="attach_gateway", netns=tb, ifname="eth1")["address"] == "172.17.0.2/16"
    bed.serve_on_host(1, "node")
    assert bed.answers(ta, bed.addr(1)) == {"node": 1}
    assert bed.answers(tb, bed.addr(1)) == {"node": 1}
    # The same port for both is refused by the kernel (one socket per port, and a VNI
    # once per socket): a local cluster needs a data-path port per node.
    c = bed.node(1, local="127.0.0.3", port=4789)
    c.proc.stdin.write(json.dumps({"op": "ensure", "network": NET1}) + "\n")  # type: ignore[union-attr]
    c.proc.stdin.flush()  # type: ignore[union-attr]
    reply = json.loads(c.proc.stdout.readline())  # type: ignore[union-attr]
    assert "VNI already exists" in reply["error"]


def udp_datagrams(bed: OverlayBed, host: int) -> tuple[int, int]:
    """The host namespace's UDP counters (in, out) from /proc/net/snmp."""
    r = bed.run(host, ["cat", "/proc/net/snmp"], capture_output=True, text=True, check=True)
    head, values = [line.split() for line in r.stdout.splitlines() if line.startswith("Udp:")]
    row = dict(zip(head, values, strict=True))
    return int(row["InDatagrams"]), int(row["OutDatagrams"])


async def test_a_socket_opened_in_a_sandbox_serves_its_tasks(bed: OverlayBed) -> None:
    """A DNS-like listener: TCP and UDP on the gateway address inside the sandbox, served
    by this process's event loop, answering a client in a task namespace."""
    a = bed.node(1)
    sandbox = a.ensure(NET1)["path"]
    task = a.task("a1")
    a.attach(task, NET1, "10.10.1.3")
    tcp = await open_socket_in_namespace(sandbox, socket.AF_INET, socket.SOCK_STREAM,
                                         ("10.10.1.1", 53))  # fmt: skip
    udp = await open_socket_in_namespace(sandbox, socket.AF_INET, socket.SOCK_DGRAM,
                                         ("10.10.1.1", 53))  # fmt: skip
    # This thread is still in its own namespace: the address is not one of ours here.
    with pytest.raises(OSError), socket.socket() as s:
        s.bind(("10.10.1.1", 0))

    async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(b"resolver\n")
        w.write(await r.readline())
        await w.drain()
        w.close()

    class Udp(asyncio.DatagramProtocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: Any) -> None:
            self.transport.sendto(b"resolver:" + data, addr)

    loop = asyncio.get_running_loop()
    server = await asyncio.start_server(on_conn, sock=tcp)
    transport, _ = await loop.create_datagram_endpoint(Udp, sock=udp)
    try:
        for mode in ([], ["--udp"]):
            proc = await asyncio.create_subprocess_exec(
                "nsenter", f"--net={task}", sys.executable, str(APPS / "client.py"),
                "10.10.1.1", "53", "--count", "3", *mode,
                stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, _ = await proc.communicate()
            assert json.loads(out) == {"names": {"resolver": 3}, "first_failures": 0,
                                       "failures": []}  # fmt: skip
    finally:
        server.close()
        transport.close()
        await server.wait_closed()
