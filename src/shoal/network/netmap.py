"""What a node is told about the overlay networks its tasks are on: the network map.

The managers build one per node from the store (the networks the node has tasks on; for
each, where every other node's tasks are, and every service on it with its VIP and running
tasks) and send it through the node's session whenever it changes, as they send the routing
mesh's table. The node's data plane converges to it: VXLAN peers, VIP backends, DNS answers.
A plain value: two maps compare equal when a node has nothing to do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, order=True)
class PeerTask:
    """A task on another node: its address on the network, where its node's VXLAN listens."""

    addr: str
    node_addr: str
    port: int


@dataclass(frozen=True, order=True)
class ServiceTask:
    """A running task of a service: DNS answers with it, the VIP sends connections to it."""

    name: str  # "web.1.<task id>": what DNS answers for, and a PTR names
    addr: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, order=True)
class NetworkService:
    name: str
    id: str
    mode: str  # "vip" or "dnsrr"
    vip: str | None  # "10.0.1.2" under vip
    aliases: tuple[str, ...] = ()
    tasks: tuple[ServiceTask, ...] = ()


@dataclass(frozen=True, order=True)
class MappedNetwork:
    id: str
    name: str
    subnet: str
    gateway: str
    vni: int
    internal: bool = False
    peers: tuple[PeerTask, ...] = ()
    services: tuple[NetworkService, ...] = ()


@dataclass(frozen=True)
class NetworkMap:
    """``data_path_port``: the UDP port this node's VXLAN devices listen on."""

    data_path_port: int = 4789
    networks: tuple[MappedNetwork, ...] = field(default_factory=tuple)

    def network(self, network_id: str) -> MappedNetwork | None:
        return next((n for n in self.networks if n.id == network_id), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "DataPathPort": self.data_path_port,
            "Networks": [
                {
                    "ID": n.id,
                    "Name": n.name,
                    "Subnet": n.subnet,
                    "Gateway": n.gateway,
                    "VNI": n.vni,
                    "Internal": n.internal,
                    "Peers": [[p.addr, p.node_addr, p.port] for p in n.peers],
                    "Services": [
                        {
                            "Name": s.name,
                            "ID": s.id,
                            "Mode": s.mode,
                            "VIP": s.vip,
                            "Aliases": list(s.aliases),
                            "Tasks": [[t.name, t.addr, list(t.aliases)] for t in s.tasks],
                        }
                        for s in n.services
                    ],
                }
                for n in self.networks
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NetworkMap:
        """The map ``to_json`` wrote; raises KeyError, TypeError or ValueError otherwise."""
        return cls(
            data_path_port=int(data["DataPathPort"]),
            networks=tuple(_network(n) for n in data["Networks"]),
        )


def _network(n: Mapping[str, Any]) -> MappedNetwork:
    return MappedNetwork(
        id=str(n["ID"]),
        name=str(n["Name"]),
        subnet=str(n["Subnet"]),
        gateway=str(n["Gateway"]),
        vni=int(n["VNI"]),
        internal=bool(n["Internal"]),
        peers=tuple(PeerTask(str(a), str(h), int(p)) for a, h, p in n["Peers"]),
        services=tuple(_service(s) for s in n["Services"]),
    )


def _service(s: Mapping[str, Any]) -> NetworkService:
    return NetworkService(
        name=str(s["Name"]),
        id=str(s["ID"]),
        mode=str(s["Mode"]),
        vip=str(s["VIP"]) if s["VIP"] else None,
        aliases=tuple(str(a) for a in s["Aliases"]),
        tasks=tuple(ServiceTask(str(n), str(a), tuple(al)) for n, a, al in s["Tasks"]),
    )


def sorted_tuple(items: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(sorted(items))
