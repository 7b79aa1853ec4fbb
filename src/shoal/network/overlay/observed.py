"""What the kernel has, read from ``ip -j -d addr show`` (links with their details and
addresses), ``ip -j neigh`` and ``bridge -j fdb``, as plain values. Pure: parsing only.

Plans compare these with what should be, which is what lets a restarted node adopt the
devices a previous run left and change only what differs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Link:
    name: str
    ifindex: int
    kind: str = ""  # "bridge", "vxlan", "veth", "" (loopback and other plain devices)
    up: bool = False  # administratively (the UP flag), whatever the carrier
    mtu: int = 0
    mac: str = ""
    master: str | None = None
    # veth: the peer's ifindex (in the peer's namespace); vxlan: its lower device, if any.
    peer_ifindex: int | None = None
    addresses: tuple[str, ...] = ()  # IPv4 CIDRs, "10.0.1.1/24"
    info: Mapping[str, Any] = field(default_factory=dict)  # kind-specific data (vxlan: id...)
    port: Mapping[str, Any] = field(default_factory=dict)  # bridge port data (isolated...)


def parse_links(doc: Iterable[Mapping[str, Any]]) -> dict[str, Link]:
    links: dict[str, Link] = {}
    for item in doc:
        linkinfo = item.get("linkinfo", {})
        addresses = tuple(
            f"{a['local']}/{a['prefixlen']}"
            for a in item.get("addr_info", [])
            if a.get("family") == "inet"
        )
        links[item["ifname"]] = Link(
            name=item["ifname"],
            ifindex=item["ifindex"],
            kind=linkinfo.get("info_kind", ""),
            up="UP" in item.get("flags", []),
            mtu=item.get("mtu", 0),
            mac=item.get("address", ""),
            master=item.get("master"),
            peer_ifindex=item.get("link_index"),
            addresses=addresses,
            info=linkinfo.get("info_data", {}),
            port=linkinfo.get("info_slave_data", {}),
        )
    return links


@dataclass(frozen=True)
class Route:
    dst: str  # "default" or a CIDR
    gateway: str | None
    dev: str | None


def parse_routes(doc: Iterable[Mapping[str, Any]]) -> list[Route]:
    return [Route(r["dst"], r.get("gateway"), r.get("dev")) for r in doc]


def parse_neighbours(doc: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Permanent neighbour entries: IPv4 address -> MAC (what ``set_peers`` owns)."""
    return {
        n["dst"]: n["lladdr"].lower()
        for n in doc
        if "PERMANENT" in n.get("state", []) and "lladdr" in n and ":" not in n["dst"]
    }


@dataclass(frozen=True)
class Fdb:
    # The VXLAN device's own entries (``self``): MAC -> (remote node, port).
    remote: dict[str, tuple[str, int]]
    # Static entries of the bridge on the VXLAN port (``master``): MACs.
    static: frozenset[str]


def parse_fdb(doc: Iterable[Mapping[str, Any]], default_port: int) -> Fdb:
    """``bridge -j fdb show dev vxlan0``. An entry without a port uses the device's own
    destination port (``default_port``); the bridge's learned and permanent (its own MAC)
    entries are not ours and are left out."""
    remote: dict[str, tuple[str, int]] = {}
    static: set[str] = set()
    for e in doc:
        mac = e["mac"].lower()
        if "self" in e.get("flags", []) and "dst" in e:
            remote[mac] = (e["dst"], e.get("port", default_port))
        elif e.get("master") and e.get("state") == "static":
            static.add(mac)
    return Fdb(remote, frozenset(static))
