"""The node's gateway bridge (see gateway_plan): ensure it, give tasks a port on it with a
default route, take ports away, remove it.

On a host where Docker runs, iptables' FORWARD chain has policy drop (``table ip filter``,
chain FORWARD), and a packet must be accepted by every base chain of the hook, so our
tasks' traffic out of the gateway bridge would be dropped there whatever our own table
says. Docker keeps one chain for users to add to, DOCKER-USER, which FORWARD jumps to
first: where it exists, ensure() adds two rules there (out of our bridge; back in for
connections the tasks opened), and remove() takes them out. Nothing else of Docker's is
touched.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import shutil
from pathlib import Path

from shoal.network.overlay import tools
from shoal.network.overlay.gateway_plan import (
    GATEWAY_MTU,
    POOL,
    allocate,
    bridge_address,
    bridge_commands,
    choose_subnet,
    render_delete,
    render_table,
    repair_commands,
    taken_by,
)
from shoal.network.overlay.host_lock import host_lock
from shoal.network.overlay.model import mac_for_ip
from shoal.network.overlay.names import NodeNames
from shoal.network.overlay.observed import parse_links, parse_routes
from shoal.network.overlay.veth import converge_veth, delete_interface
from shoal.network.overlay.veth_plan import VethSpec

log = logging.getLogger(__name__)

IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
DOCKER_USER = "DOCKER-USER"  # Docker's chain for users' own forwarding rules


class GatewayBridge:
    def __init__(
        self, names: NodeNames, prefixlen: int = 16, pool: str = POOL, mtu: int = GATEWAY_MTU
    ) -> None:
        self.names = names
        self.prefixlen = prefixlen
        self.pool = pool
        self.mtu = mtu
        self._address: str | None = None  # the bridge's, with the subnet's prefix
        self._lock = asyncio.Lock()

    @property
    def address(self) -> str:
        """The bridge's address as a CIDR ("172.16.0.1/16"); the tasks' default gateway."""
        if self._address is None:
            raise RuntimeError("gateway bridge used before ensure()")
        return self._address

    @property
    def subnet(self) -> str:
        return str(ipaddress.IPv4Interface(self.address).network)

    async def ensure(self) -> str:
        """Makes (or adopts) the bridge, its NAT table and IPv4 forwarding; returns the
        bridge's address (CIDR)."""
        name = self.names.gateway_bridge
        async with self._lock:
            # Host-wide, from reading what the host uses to making the bridge: another node
            # on this host may be choosing a subnet now (host_lock.py).
            async with host_lock("gateway"):
                links_doc, routes_doc = await tools.show(
                    "ip", None, ["addr show", "route show table all"], details=True
                )
                links, routes = parse_links(links_doc), parse_routes(routes_doc)
                bridge = links.get(name)
                commands: list[str] = []
                if bridge is not None and bridge.kind == "bridge" and bridge.addresses:
                    address = bridge.addresses[0]
                    commands += repair_commands(bridge, self.mtu)
                else:
                    if bridge is not None:
                        commands.append(f"link del {name}")
                    others = {k: v for k, v in links.items() if k != name}
                    mine = [r for r in routes if r.dev != name]
                    subnet = choose_subnet(taken_by(others, mine), self.prefixlen, self.pool)
                    commands += bridge_commands(name, subnet, self.mtu)
                    address = bridge_address(subnet)
                    log.info("gateway bridge %s on %s", name, subnet)
                await tools.batch("ip", None, commands)
            subnet = str(ipaddress.IPv4Interface(address).network)
            await tools.nft(None, render_table(self.names.gateway_table, name, subnet))
            await asyncio.to_thread(_enable_ip_forward)
            await docker_user_rules(self.names, add=True)
            self._address = address
            return address

    async def attach_gateway(
        self, task_netns_path: str, ifname: str, address: str | None = None
    ) -> str:
        """Gives the task ``ifname`` on the gateway bridge and its default route through
        it; returns the task's address there (CIDR). Without ``address``, the one the task
        has there already, else the lowest free one."""
        bridge = ipaddress.IPv4Interface(self.address)
        async with self._lock:
            if address is None:
                address = await self._current(task_netns_path, ifname, bridge)
            if address is None:
                [doc] = await tools.show("ip", None, ["link show"])
                in_use = [
                    a
                    for link in parse_links(doc).values()
                    if link.master == self.names.gateway_bridge
                    and (a := self.names.gateway_port_address(link.name)) is not None
                ]
                address = allocate(self.address, in_use)
            cidr = f"{address.split('/')[0]}/{bridge.network.prefixlen}"
            if ipaddress.IPv4Interface(cidr).network != bridge.network:
                raise ValueError(f"{address} is not an address of {bridge.network}")
            spec = VethSpec(
                inner_path=task_netns_path,
                inner_name=ifname,
                address=cidr,
                mac=mac_for_ip(cidr),
                mtu=self.mtu,
                outer_name=self.names.gateway_port(cidr),
                bridge=self.names.gateway_bridge,
                isolated=True,
                default_via=str(bridge.ip),
            )
            await converge_veth(spec, None)
            return cidr

    async def _current(
        self, task_netns_path: str, ifname: str, bridge: ipaddress.IPv4Interface
    ) -> str | None:
        [doc] = await tools.show("ip", task_netns_path, ["addr show"])
        link = parse_links(doc).get(ifname)
        for a in link.addresses if link is not None else ():
            if ipaddress.IPv4Interface(a).network == bridge.network:
                return a
        return None

    async def detach_gateway(self, task_netns_path: str, ifname: str) -> bool:
        """Removes the task's gateway interface (its address is free again at once)."""
        async with self._lock:
            return await delete_interface(task_netns_path, ifname)

    async def remove(self) -> None:
        """Deletes the bridge, every port of ours on it (the tasks' gateway interfaces go
        with them) and the NAT table. IPv4 forwarding stays on (see nftables.py)."""
        async with self._lock:
            [doc] = await tools.show("ip", None, ["link show"])
            links = parse_links(doc)
            doomed = [n for n in links if self.names.gateway_port_address(n) is not None]
            if self.names.gateway_bridge in links:
                doomed.append(self.names.gateway_bridge)
            await tools.batch("ip", None, [f"link del {n}" for n in doomed])
            await tools.nft(None, render_delete(self.names.gateway_table))
            await docker_user_rules(self.names, add=False)
            self._address = None


async def docker_user_rules(names: NodeNames, add: bool) -> None:
    """Let the node's tasks' traffic through Docker's FORWARD filter, where Docker runs
    (``add``), or take those rules out again."""
    iptables = shutil.which("iptables")
    if iptables is None:
        return
    if not await _succeeds([iptables, "-w", "-S", DOCKER_USER]):
        return  # no Docker here (or no such chain): nothing filters our traffic
    bridge = names.gateway_bridge
    comment = ["-m", "comment", "--comment", f"shoal {bridge}"]
    rules = [
        ["-i", bridge, "!", "-o", bridge, *comment, "-j", "ACCEPT"],
        ["-o", bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", *comment,
         "-j", "ACCEPT"],
    ]  # fmt: skip
    for rule in rules:
        present = await _succeeds([iptables, "-w", "-C", DOCKER_USER, *rule])
        if add and not present:
            await tools.run([iptables, "-w", "-I", DOCKER_USER, *rule])
        elif not add and present:
            await tools.run([iptables, "-w", "-D", DOCKER_USER, *rule])


async def _succeeds(argv: list[str]) -> bool:
    try:
        await tools.run(argv)
    except tools.ToolError:
        return False
    return True


def _enable_ip_forward() -> None:
    """Tasks' packets to the outside are forwarded by the node, from the gateway bridge
    to its uplink. Left on at remove, as Docker and the routing mesh leave it."""
    if IP_FORWARD.read_text().strip() != "1":
        IP_FORWARD.write_text("1\n")
