"""A node's overlay networks: its data plane kept converged to the network map its managers
send, its tasks attached to their networks, and the resolver its tasks ask.

- ``offer(map)``: the newest map; a loop converges to it. For every network the node has
  tasks on: the sandbox, the peers (where other nodes' tasks are), the DNS listener on the
  gateway address; for every local task: its VIP table (each service on its networks ->
  that service's running tasks). Sandboxes of networks the node no longer has tasks on go.
- ``attach(task)``: before a task starts, its namespace (made here for a process task, or
  a container's, given), an interface on each of its networks, and a way out through the
  gateway bridge unless every network of the task is internal. Idempotent: a restarted
  node adopts what is there, so its tasks keep their connections.
- ``detach(task)``: once the task has stopped.

The resolver answers a task from the records of the networks that task is on, found by
the address the query comes from (a task's address is unique across the cluster's
networks: their subnets never overlap).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field

from shoal.network.datapath import MeshConfig
from shoal.network.dns import DnsServer, NetworkRecords, ServiceEntry, TaskEntry
from shoal.network.netmap import MappedNetwork, NetworkMap
from shoal.network.overlay import tools
from shoal.network.overlay.endpoints import TaskEndpoints
from shoal.network.overlay.gateway import GatewayBridge
from shoal.network.overlay.model import OverlayNetwork, Peer, mac_for_ip
from shoal.network.overlay.names import BRIDGE, NodeNames, check_ifname, ip_hex
from shoal.network.overlay.namespaces import is_namespace
from shoal.network.overlay.netns_socket import open_socket_in_namespace
from shoal.network.overlay.observed import parse_links
from shoal.network.overlay.sandbox import NetworkSandbox
from shoal.network.overlay.sweep import sweep
from shoal.network.overlay.vip import VipTables
from shoal.network.routing import Backend, PortRoute, RoutingTable
from shoal.network.userspace import UserspaceDataPath

log = logging.getLogger(__name__)

DNS_PORT = 53
GATEWAY_IFNAME_BASE = "eth"
REQUIRED_TOOLS = ("ip", "bridge", "nft", "nsenter")


def overlay_support() -> str:
    """Why this node cannot build overlay networks, or "" if it can: root, and the tools
    the data plane drives."""
    if os.geteuid() != 0:
        return "overlay networks need root (network namespaces, bridges, VXLAN)"
    missing = [t for t in REQUIRED_TOOLS if shutil.which(t) is None]
    if missing:
        return "overlay networks need " + ", ".join(missing) + " (iproute2, nftables, util-linux)"
    return ""


@dataclass(frozen=True)
class TaskAttachment:
    """A task's place on one network: the network (as the task's spec carried it) and the
    address the managers gave the task there (CIDR)."""

    network: OverlayNetwork
    address: str

    @property
    def ip(self) -> str:
        return self.address.split("/")[0]


@dataclass(frozen=True)
class HostPort:
    """A port a task publishes on its node: ``host`` on the node's address goes to
    ``target`` in the task's namespace (what docker-proxy does for a container)."""

    protocol: str  # "tcp" or "udp"
    host: int
    target: int


@dataclass
class _LocalTask:
    task_id: str
    netns_path: str
    own_namespace: bool
    attachments: list[TaskAttachment]
    vips: dict[str, tuple[str, ...]] | None = None  # the VIP table last applied
    gateway_addr: str | None = None  # its address on the node's gateway bridge
    ports: tuple[HostPort, ...] = ()


@dataclass(frozen=True)
class TaskNetwork:
    """What a task runs with: its namespace, and the resolver to put in its resolv.conf."""

    netns_path: str
    nameservers: list[str] = field(default_factory=list)


class NodeOverlay:
    def __init__(
        self,
        prefix: str,
        local_addr: str | None = None,
        data_path_port: int | None = None,
        upstreams: Sequence[str] | None = None,
    ) -> None:
        """``prefix``: what every name this node makes starts with (names.py);
        ``local_addr``: its underlay address; ``data_path_port``: its own VXLAN port where
        it shares a host with other nodes (else the cluster's, from the map);
        ``upstreams``: the resolvers names that are not ours go to (None: resolv.conf)."""
        self.names = NodeNames(prefix)
        self.local_addr = local_addr
        self._port_override = data_path_port
        self._map = NetworkMap()
        self._map_known = asyncio.Event()
        self._changed = asyncio.Event()
        self._tasks: dict[str, _LocalTask] = {}
        self._sandbox: NetworkSandbox | None = None
        self.endpoints = TaskEndpoints(self.names)
        self.gateway = GatewayBridge(self.names)
        self._gateway_ready = False
        self.vips = VipTables(self.names.vip_table)
        self.dns = DnsServer(self._who, upstreams=upstreams)
        self._dns_sockets: dict[str, list[socket.socket]] = {}
        self._ensured: dict[str, OverlayNetwork] = {}
        self._by_address: dict[str, _LocalTask] = {}
        self._records: dict[str, NetworkRecords] = {}
        self._lock = asyncio.Lock()
        self._runner: asyncio.Task[None] | None = None
        # Process tasks' published ports: the node's address -> the task, in userspace.
        self._host_ports = UserspaceDataPath(
            MeshConfig(data_path="userspace", addresses=[local_addr] if local_addr else None),
            "published ports of process tasks on overlay networks",
        )

    @property
    def data_path_port(self) -> int:
        return self._port_override or self._map.data_path_port

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self.dns.start()
        await self._host_ports.start()
        self._runner = asyncio.create_task(self._converge_loop(), name="overlay networks")

    async def stop(self) -> None:
        """Stop serving; what is in the kernel stays, for the next start to adopt (the
        tasks run on)."""
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
            self._runner = None
        await self.dns.stop()
        self._dns_sockets.clear()
        await self.vips.close()
        await self._host_ports.stop()

    async def leave(self) -> None:
        """The node leaves the swarm: everything it made goes."""
        await self.stop()
        gone = await sweep(self.names)
        if gone:
            log.info("overlay: removed %s", ", ".join(gone))

    # --- the map -----------------------------------------------------------------------------

    def offer(self, netmap: NetworkMap) -> None:
        self._map = netmap
        self._map_known.set()
        self._changed.set()

    async def _converge_loop(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            try:
                async with self._lock:
                    await self._converge()
            except Exception:
                log.exception("overlay: converging to the network map failed; retrying")
                await asyncio.sleep(1.0)
                self._changed.set()

    def _sandboxes(self) -> NetworkSandbox:
        port = self.data_path_port
        if self._sandbox is None or self._sandbox.port != port:
            self._sandbox = NetworkSandbox(self.names, port=port, local=self.local_addr)
            self._ensured.clear()
        return self._sandbox

    async def _ensure_network(self, network: OverlayNetwork) -> None:
        if self._ensured.get(network.id) == network:
            return
        sandboxes = self._sandboxes()
        await sandboxes.ensure(network)
        self._ensured[network.id] = network
        if network.id not in self._dns_sockets:
            await self._listen_dns(network, sandboxes.path(network.id))

    async def _listen_dns(self, network: OverlayNetwork, path: str) -> None:
        sockets = []
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            sock = await open_socket_in_namespace(
                path, socket.AF_INET, kind, (network.gateway, DNS_PORT)
            )
            sockets.append(sock)
            await self.dns.add(sock)
        self._dns_sockets[network.id] = sockets

    async def _drop_network(self, network_id: str) -> None:
        for sock in self._dns_sockets.pop(network_id, []):
            await self.dns.remove(sock)
        self._ensured.pop(network_id, None)
        self._records.pop(network_id, None)
        await self._sandboxes().remove(network_id)

    async def _converge(self) -> None:
        netmap = self._map
        wanted = {n.id: n for n in netmap.networks}
        local_networks = {a.network.id for t in self._tasks.values() for a in t.attachments}
        for mapped in netmap.networks:
            if mapped.id not in local_networks:
                continue  # the map is ahead of the tasks: wait until one is attached
            await self._ensure_network(overlay_network(mapped))
            await self._sandboxes().set_peers(
                mapped.id, [Peer(p.addr, p.node_addr, p.port) for p in mapped.peers]
            )
            self._records[mapped.id] = network_records(mapped)
        for network_id in list(self._ensured):
            if network_id not in wanted and network_id not in local_networks:
                await self._drop_network(network_id)
        for task in list(self._tasks.values()):
            await self._apply_vips(task)

    def _vip_table(self, task: _LocalTask) -> dict[str, tuple[str, ...]]:
        table: dict[str, tuple[str, ...]] = {}
        for attachment in task.attachments:
            mapped = self._map.network(attachment.network.id)
            for svc in mapped.services if mapped is not None else ():
                if svc.mode == "vip" and svc.vip:
                    table[svc.vip] = tuple(sorted(t.addr for t in svc.tasks))
        return table

    async def _apply_vips(self, task: _LocalTask) -> None:
        table = self._vip_table(task)
        if table != task.vips:
            await self.vips.apply(task.netns_path, table)
            task.vips = table

    # --- tasks -------------------------------------------------------------------------------

    async def attach(
        self,
        task_id: str,
        attachments: list[TaskAttachment],
        netns_path: str | None = None,
        ports: Sequence[HostPort] = (),
    ) -> TaskNetwork:
        """Give the task its interfaces (eth0, eth1... in the order of its networks, and
        the gateway after them). ``netns_path``: the container's namespace; None, make
        one for the task (a process task). ``ports``: what it publishes on the node (it
        needs a network that is not internal: the way in is the gateway bridge)."""
        if self._port_override is None:
            # The cluster's data-path port comes with the first map.
            await self._map_known.wait()
        async with self._lock:
            own = netns_path is None
            if netns_path is None:
                netns_path = await self.endpoints.create_task_namespace(task_id)
            for i, attachment in enumerate(attachments):
                await self._ensure_network(attachment.network)
                await self.endpoints.attach(
                    netns_path, attachment.network, f"{GATEWAY_IFNAME_BASE}{i}", attachment.address
                )
            gateway_addr = None
            if attachments and not all(a.network.internal for a in attachments):
                if not self._gateway_ready:
                    await self.gateway.ensure()
                    self._gateway_ready = True
                gateway_addr = await self.gateway.attach_gateway(
                    netns_path, f"{GATEWAY_IFNAME_BASE}{len(attachments)}"
                )
            task = _LocalTask(
                task_id,
                netns_path,
                own,
                list(attachments),
                gateway_addr=gateway_addr.split("/")[0] if gateway_addr else None,
                ports=tuple(ports) if gateway_addr else (),
            )
            self._tasks[task_id] = task
            for a in attachments:
                self._by_address[a.ip] = task
            await self._apply_vips(task)
            if task.ports:
                await self._apply_host_ports()
        self._changed.set()  # the sandboxes' peers and records
        return TaskNetwork(netns_path, [a.network.gateway for a in attachments[:1]])

    async def register(
        self, task_id: str, attachments: list[TaskAttachment], netns_path: str
    ) -> None:
        """A container whose interfaces Docker made (through our network driver, see
        docker_driver.py): its VIP table, and its addresses for the resolver to know it."""
        async with self._lock:
            task = _LocalTask(task_id, netns_path, False, list(attachments))
            self._tasks[task_id] = task
            for a in attachments:
                self._by_address[a.ip] = task
            await self._apply_vips(task)
        self._changed.set()

    async def detach(self, task_id: str) -> None:
        """The task stopped: let go of it (a process task's namespace is deleted, with its
        interfaces; a container's interfaces go with the container, through the driver)."""
        async with self._lock:
            task = self._tasks.pop(task_id, None)
            if task is None:
                return
            for a in task.attachments:
                if self._by_address.get(a.ip) is task:
                    del self._by_address[a.ip]
            await self.vips.forget(task.netns_path)
            if task.ports:
                await self._apply_host_ports()
            if task.own_namespace:
                await self.endpoints.remove_task_namespace(task_id)
        self._changed.set()

    async def _apply_host_ports(self) -> None:
        routes = [
            PortRoute(
                "udp" if p.protocol == "udp" else "tcp",
                p.host,
                t.task_id,
                (Backend(t.gateway_addr, p.target),),
            )
            for t in self._tasks.values()
            if t.gateway_addr
            for p in t.ports
        ]
        await self._host_ports.apply(RoutingTable.of(routes))
        if self._host_ports.errors:
            log.warning("overlay: published ports not served: %s", self._host_ports.errors)

    # --- containers (Docker's side of the pair, see docker_driver.py) ------------------------

    def container_port(self, address: str) -> str:
        """The name of a container's interface while it is still in the node's namespace,
        before Docker moves it into the container (and names it eth0...)."""
        return check_ifname(f"{self.names.prefix}c{ip_hex(address)}")

    async def container_endpoint(self, network: OverlayNetwork, address: str) -> str:
        """A veth pair for a container on ``network`` with ``address``: one end a port of the
        network's bridge in its sandbox, the other in the node's namespace for Docker to
        move into the container; returns that end's name. A pair left by a container with
        the same address before is replaced."""
        async with self._lock:
            await self._ensure_network(network)
            sandbox = self._sandboxes().path(network.id)
            outer = self.names.sandbox_port(address)
            inner = self.container_port(address)
            [inside] = await tools.show("ip", sandbox, ["link show"])
            [here] = await tools.show("ip", None, ["link show"])
            if outer in parse_links(inside):
                await tools.batch("ip", sandbox, [f"link del {outer}"])
            if inner in parse_links(here):
                await tools.batch("ip", None, [f"link del {inner}"])
            await tools.batch(
                "ip",
                None,
                [
                    f"link add {inner} mtu {network.mtu} type veth peer name {outer} "
                    f"mtu {network.mtu} netns {sandbox}",
                    f"link set {inner} address {mac_for_ip(address)}",
                ],
            )
            await tools.batch("ip", sandbox, [f"link set {outer} master {BRIDGE} up"])
            return inner

    async def drop_container_endpoint(self, network_id: str, address: str) -> None:
        """The container left the network: its pair goes (if Docker has not taken it)."""
        async with self._lock:
            sandbox = self._sandboxes().path(network_id)
            if not is_namespace(sandbox):
                return
            outer = self.names.sandbox_port(address)
            [inside] = await tools.show("ip", sandbox, ["link show"])
            if outer in parse_links(inside):
                await tools.batch("ip", sandbox, [f"link del {outer}"])

    # --- DNS ---------------------------------------------------------------------------------

    def _who(self, source: str) -> Sequence[NetworkRecords] | None:
        task = self._by_address.get(source)
        if task is None:
            return None
        return [
            self._records[a.network.id] for a in task.attachments if a.network.id in self._records
        ]


def overlay_network(mapped: MappedNetwork) -> OverlayNetwork:
    return OverlayNetwork(
        id=mapped.id,
        name=mapped.name,
        subnet=mapped.subnet,
        gateway=mapped.gateway,
        vni=mapped.vni,
        internal=mapped.internal,
    )


def network_records(mapped: MappedNetwork) -> NetworkRecords:
    return NetworkRecords.build(
        mapped.name,
        [
            ServiceEntry(
                name=s.name,
                endpoint_mode="dnsrr" if s.mode == "dnsrr" else "vip",
                vip=s.vip,
                aliases=s.aliases,
                tasks=tuple(TaskEntry(t.name, t.addr, t.aliases) for t in s.tasks),
            )
            for s in mapped.services
        ],
    )
