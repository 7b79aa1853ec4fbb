"""Network sandboxes: per overlay network, a namespace with the network's bridge and VXLAN
device, and the peer entries that send each remote task's frames to its node.

Converges rather than creates: ``ensure`` reads what the sandbox has and runs only what
differs (nothing, for a sandbox a previous run of the node left right), so a restarted
node adopts its sandboxes, and the tasks attached to them keep their connections.
``set_peers`` writes exactly the given peers, removing the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from shoal.network.overlay import namespaces, tools
from shoal.network.overlay.model import DEFAULT_DATA_PATH_PORT, OverlayNetwork, Peer
from shoal.network.overlay.names import VXLAN, NodeNames
from shoal.network.overlay.observed import Fdb, parse_fdb, parse_links, parse_neighbours
from shoal.network.overlay.peers_plan import index_peers, plan_peers
from shoal.network.overlay.sandbox_plan import plan_sandbox

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ensured:
    path: str  # the sandbox's namespace
    created: bool  # a new namespace (else an existing one, adopted)
    commands: int  # how many commands it took to make it right (0: it was)


@dataclass(frozen=True)
class _PeerState:
    neighbours: dict[str, str]
    fdb: Fdb


class NetworkSandbox:
    """The sandboxes of one node. ``port``: the node's data-path port (UDP, in the node's
    namespace); ``local``: its underlay address, pinned on every VXLAN device (the source
    address of the encapsulated packets), or None to let routing choose."""

    def __init__(
        self,
        names: NodeNames,
        port: int = DEFAULT_DATA_PATH_PORT,
        local: str | None = None,
    ) -> None:
        self.names = names
        self.port = port
        self.local = local
        # What set_peers last wrote per network: the next one diffs against it instead of
        # reading the kernel again. Forgotten whenever the kernel may differ from it.
        self._peers: dict[str, _PeerState] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def path(self, network_id: str) -> str:
        return self.names.path(self.names.sandbox(network_id))

    def _lock(self, network_id: str) -> asyncio.Lock:
        return self._locks.setdefault(network_id, asyncio.Lock())

    async def ensure(self, network: OverlayNetwork) -> Ensured:
        async with self._lock(network.id):
            path, created = await namespaces.ensure_named(self.names.sandbox(network.id))
            [doc] = await tools.show("ip", path, ["addr show"], details=True)
            plan = plan_sandbox(network, path, parse_links(doc), self.port, self.local)
            if plan.node:
                self._peers.pop(network.id, None)  # a new VXLAN device has no entries
            await tools.batch("ip", path, plan.sandbox_first)
            await tools.batch("ip", None, plan.node)
            await tools.batch("ip", path, plan.sandbox)
            if not created and not plan.empty:
                log.info("sandbox %s of network %s repaired: %s", path, network.name, plan)
            return Ensured(path, created, plan.commands)

    async def set_peers(self, network_id: str, peers: Iterable[Peer]) -> int:
        """Makes the sandbox's peer entries exactly ``peers``; returns how many commands it
        took (0: they were; after a retry, those of the retry)."""
        peers = list(index_peers(peers).values())
        async with self._lock(network_id):
            path = self.path(network_id)
            state = self._peers.pop(network_id, None)
            try:
                if state is None:
                    state = await self._observe_peers(path)
                count = await self._apply_peers(path, peers, state)
            except tools.ToolError as e:
                # Something else changed the entries (or our memory is stale): read what
                # is there and converge from it, once.
                log.warning("set_peers on %s: %s; retrying from the kernel's state", path, e)
                count = await self._apply_peers(path, peers, await self._observe_peers(path))
            macs = {p.mac: p for p in peers}
            self._peers[network_id] = _PeerState(
                {p.address: p.mac for p in peers},
                Fdb({m: (p.node, p.port) for m, p in macs.items()}, frozenset(macs)),
            )
            return count

    async def _observe_peers(self, path: str) -> _PeerState:
        (neigh,), (fdb,) = await asyncio.gather(
            tools.show("ip", path, [f"neigh show dev {VXLAN}"]),
            tools.show("bridge", path, [f"fdb show dev {VXLAN}"]),
        )
        return _PeerState(parse_neighbours(neigh), parse_fdb(fdb, self.port))

    async def _apply_peers(self, path: str, peers: list[Peer], state: _PeerState) -> int:
        plan = plan_peers(peers, state.neighbours, state.fdb)
        # Both batches run to their end even if one fails, so that a retry reads a kernel
        # that nothing of ours is still changing.
        results = await asyncio.gather(
            tools.batch("ip", path, plan.ip),
            tools.batch("bridge", path, plan.bridge),
            return_exceptions=True,
        )
        for r in results:
            if isinstance(r, BaseException):
                raise r
        return len(plan.ip) + len(plan.bridge)

    async def remove(self, network_id: str) -> None:
        """Deletes the sandbox: its VXLAN device, bridge, the veth pairs of the tasks
        attached to it, and the namespace. Nothing if it is gone.

        A socket the node opened in the sandbox (its DNS listener) keeps the emptied
        namespace alive until it is closed; close it too."""
        async with self._lock(network_id):
            self._peers.pop(network_id, None)
            await namespaces.delete_named(self.names.sandbox(network_id))
        self._locks.pop(network_id, None)

    def present(self) -> list[str]:
        """IDs (first 10 characters) of the networks whose sandboxes this node has now,
        e.g. to remove those of networks it no longer has tasks on after a restart."""
        head = self.names.prefix + "-"
        return [
            n[len(head) :]
            for n in namespaces.list_named(head)
            if n[len(head) :].isalnum()  # task namespaces are "<prefix>-t-<name>"
        ]
