"""What to run to give a task namespace one interface on a bridge: a veth pair, one end in
the task's namespace (``eth0``, its address, MAC and MTU), the other a port of a bridge in
another namespace (a network's ``br0`` in its sandbox, or the node's gateway bridge).
Pure: from what both namespaces have, the commands that make it so.

A pair that is there and joined as it should be is adopted (a restarted node must not cut
a running task's connections), and only what differs is fixed (address, MTU, up, default
route, port isolation); a pair that is not (a stale end, an end of another pair, another
device under the name, a wrong MAC) is replaced. Three batches: the task's namespace loses
a stale interface first (the new end will take its name), the bridge's namespace creates
the pair, putting the inner end straight into the task's namespace (``peer ... netns
PATH``, which iproute2 also takes as a path, e.g. Docker's ``/var/run/docker/netns/...``),
then the task's namespace configures its end.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shoal.network.overlay.names import check_ifname
from shoal.network.overlay.observed import Link, Route


@dataclass(frozen=True)
class VethSpec:
    inner_path: str  # the task's namespace
    inner_name: str  # "eth0"
    address: str  # CIDR, "10.0.1.3/24"
    mac: str
    mtu: int
    outer_name: str  # the bridge port, in the bridge's namespace
    bridge: str
    isolated: bool = False  # a port that may not talk to the bridge's other ports
    default_via: str | None = None  # a default route through the bridge's address

    def __post_init__(self) -> None:
        check_ifname(self.inner_name)
        check_ifname(self.outer_name)


@dataclass
class VethPlan:
    inner_first: list[str] = field(default_factory=list)
    outer: list[str] = field(default_factory=list)
    inner: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.inner_first or self.outer or self.inner)

    @property
    def commands(self) -> int:
        return len(self.inner_first) + len(self.outer) + len(self.inner)


def _paired(inner: Link | None, outer: Link | None) -> bool:
    """Whether the two names are the two ends of one veth pair (each one's peer index is
    the other's index; an index is only unique within its namespace, hence both ways)."""
    return (
        inner is not None
        and outer is not None
        and inner.kind == "veth"
        and outer.kind == "veth"
        and inner.peer_ifindex == outer.ifindex
        and outer.peer_ifindex == inner.ifindex
    )


def plan_veth(
    spec: VethSpec,
    inner_links: dict[str, Link],
    outer_links: dict[str, Link],
    inner_routes: list[Route] | None = None,
) -> VethPlan:
    """``inner_routes``: the task namespace's main-table routes, needed when the spec asks
    for a default route."""
    plan = VethPlan()
    inner = inner_links.get(spec.inner_name)
    outer = outer_links.get(spec.outer_name)
    paired = _paired(inner, outer)
    if paired and inner is not None and outer is not None and inner.mac.lower() == spec.mac:
        if outer.master != spec.bridge:
            plan.outer.append(f"link set {spec.outer_name} master {spec.bridge}")
        if outer.mtu != spec.mtu:
            plan.outer.append(f"link set {spec.outer_name} mtu {spec.mtu}")
        isolated = bool(outer.port.get("isolated", False))
        if spec.isolated != isolated or outer.master != spec.bridge:
            plan.outer.append(_isolation(spec))
        if not outer.up:
            plan.outer.append(f"link set {spec.outer_name} up")
        for addr in inner.addresses:
            if addr != spec.address:
                plan.inner.append(f"addr del {addr} dev {spec.inner_name}")
        if spec.address not in inner.addresses:
            plan.inner.append(f"addr add {spec.address} dev {spec.inner_name}")
        if inner.mtu != spec.mtu:
            plan.inner.append(f"link set {spec.inner_name} mtu {spec.mtu}")
        if not inner.up:
            plan.inner.append(f"link set {spec.inner_name} up")
    else:
        if inner is not None:
            plan.inner_first.append(f"link del {spec.inner_name}")
        if outer is not None and not paired:  # else it went with its peer, just above
            plan.outer.append(f"link del {spec.outer_name}")
        plan.outer += [
            f"link add {spec.outer_name} mtu {spec.mtu} type veth peer name {spec.inner_name} "
            f"address {spec.mac} mtu {spec.mtu} netns {spec.inner_path}",
            f"link set {spec.outer_name} master {spec.bridge}",
            *([_isolation(spec)] if spec.isolated else []),
            f"link set {spec.outer_name} up",
        ]
        plan.inner += [
            f"addr add {spec.address} dev {spec.inner_name}",
            f"link set {spec.inner_name} up",
        ]
        inner_routes = []  # the new interface has none
    if spec.default_via is not None:
        want = Route("default", spec.default_via, spec.inner_name)
        if want not in (inner_routes or []):
            plan.inner.append(f"route replace default via {spec.default_via} dev {spec.inner_name}")
    return plan


def _isolation(spec: VethSpec) -> str:
    return (
        f"link set {spec.outer_name} type bridge_slave isolated {'on' if spec.isolated else 'off'}"
    )
