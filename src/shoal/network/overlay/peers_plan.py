"""What to run to make a sandbox's peer entries exactly a given set of peers. Pure.

Per remote task, three entries in its network's sandbox:
- a permanent neighbour entry on ``vxlan0`` (address -> MAC): the VXLAN device is a
  ``proxy``, so it answers a local task's ARP request for that address itself, and no
  broadcast crosses the underlay;
- an FDB entry of the VXLAN device (``self``: MAC -> remote node and its data-path port):
  where the encapsulated frame goes;
- a static FDB entry of the bridge (``master``: MAC -> the VXLAN port): frames for the MAC
  go to the VXLAN device alone, not flooded over every local task's port (the VXLAN port
  does not learn; see sandbox_plan).

Two batches, ``ip`` and ``bridge``, each removing what is there and not wanted before
writing what is wanted and differs; what is already right is not touched. ``replace``
makes a write idempotent, so a plan computed from a slightly stale view still converges.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from shoal.network.overlay.model import Peer
from shoal.network.overlay.names import VXLAN
from shoal.network.overlay.observed import Fdb


@dataclass
class PeerPlan:
    ip: list[str] = field(default_factory=list)
    bridge: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.ip or self.bridge)


def index_peers(peers: Iterable[Peer]) -> dict[str, Peer]:
    by_address: dict[str, Peer] = {}
    for p in peers:
        other = by_address.get(p.address)
        if other is not None and other != p:
            raise ValueError(f"address {p.address} given on two nodes: {other.node}, {p.node}")
        by_address[p.address] = p
    return by_address


def plan_peers(peers: Iterable[Peer], neighbours: dict[str, str], fdb: Fdb) -> PeerPlan:
    """``neighbours`` and ``fdb``: what the sandbox's ``vxlan0`` has (observed/parsed)."""
    want = index_peers(peers)
    want_macs = {p.mac: p for p in want.values()}
    plan = PeerPlan()
    for address in sorted(neighbours):
        if address not in want:
            plan.ip.append(f"neigh del {address} dev {VXLAN}")
    for address, p in sorted(want.items()):
        if neighbours.get(address) != p.mac:
            plan.ip.append(f"neigh replace {address} lladdr {p.mac} dev {VXLAN} nud permanent")

    for mac in sorted(fdb.remote):
        if mac not in want_macs:
            plan.bridge.append(f"fdb del {mac} dev {VXLAN} self")
    for mac in sorted(fdb.static):
        if mac not in want_macs:
            plan.bridge.append(f"fdb del {mac} dev {VXLAN} master")
    for mac, p in sorted(want_macs.items()):
        if fdb.remote.get(mac) != (p.node, p.port):
            plan.bridge.append(
                f"fdb replace {mac} dev {VXLAN} dst {p.node} port {p.port} self permanent"
            )
        if mac not in fdb.static:
            plan.bridge.append(f"fdb replace {mac} dev {VXLAN} master static")
    return plan
