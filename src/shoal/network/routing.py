"""What the routing mesh must do on one node: for each published port, where connections go.

A ``RoutingTable`` is a plain value. The node builds one from what its manager session says
(the running, healthy task endpoints of each service with ingress-published ports) and hands
it to a data path, which converges to it. Comparing two tables (``diff_tables``) tells a data
path what to add, change and remove.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Protocol = Literal["tcp", "udp"]
PROTOCOLS: tuple[Protocol, ...] = ("tcp", "udp")


@dataclass(frozen=True, order=True)
class Backend:
    """One task endpoint: an address the node can reach and the task's host port."""

    addr: str
    port: int

    def __post_init__(self) -> None:
        ipaddress.ip_address(self.addr)  # raises ValueError on a name or garbage
        if not 0 < self.port < 65536:
            raise ValueError(f"invalid backend port {self.port}")

    @property
    def is_ipv4(self) -> bool:
        return ipaddress.ip_address(self.addr).version == 4

    def __str__(self) -> str:
        return f"[{self.addr}]:{self.port}" if ":" in self.addr else f"{self.addr}:{self.port}"


RouteKey = tuple[Protocol, int]


@dataclass(frozen=True)
class PortRoute:
    """One published port and the endpoints it spreads connections over.

    ``backends`` is a set in meaning; it is kept sorted so that two equal routes compare and
    render identically.
    """

    protocol: Protocol
    port: int
    service_id: str
    backends: tuple[Backend, ...] = ()

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unsupported protocol {self.protocol!r}")
        if not 0 < self.port < 65536:
            raise ValueError(f"invalid published port {self.port}")
        object.__setattr__(self, "backends", tuple(sorted(set(self.backends))))

    @property
    def key(self) -> RouteKey:
        return (self.protocol, self.port)

    def __str__(self) -> str:
        return f"{self.port}/{self.protocol}"


@dataclass(frozen=True)
class RoutingTable:
    """Every published port this node serves, keyed by (protocol, published port)."""

    routes: Mapping[RouteKey, PortRoute] = field(default_factory=dict)

    @classmethod
    def of(cls, routes: Iterable[PortRoute]) -> RoutingTable:
        by_key: dict[RouteKey, PortRoute] = {}
        for r in routes:
            if r.key in by_key:
                raise ValueError(f"port {r} is published twice")
            by_key[r.key] = r
        return cls(dict(sorted(by_key.items())))

    def __iter__(self) -> Iterator[PortRoute]:
        return iter(self.routes.values())

    def __len__(self) -> int:
        return len(self.routes)

    def get(self, protocol: Protocol, port: int) -> PortRoute | None:
        return self.routes.get((protocol, port))

    def to_json(self) -> list[dict[str, object]]:
        return [
            {
                "Protocol": r.protocol,
                "PublishedPort": r.port,
                "ServiceID": r.service_id,
                "Backends": [{"Addr": b.addr, "Port": b.port} for b in r.backends],
            }
            for r in self
        ]

    @classmethod
    def from_json(cls, data: Iterable[Mapping[str, Any]]) -> RoutingTable:
        """The table ``to_json`` wrote; raises ValueError, KeyError or TypeError on anything
        else."""
        return cls.of(
            PortRoute(
                protocol=_protocol(d["Protocol"]),
                port=int(d["PublishedPort"]),
                service_id=str(d.get("ServiceID", "")),
                backends=tuple(
                    Backend(str(b["Addr"]), int(b["Port"])) for b in d.get("Backends", [])
                ),
            )
            for d in data
        )


def _protocol(value: object) -> Protocol:
    if value == "tcp":
        return "tcp"
    if value == "udp":
        return "udp"
    raise ValueError(f"unsupported protocol {value!r}")


EMPTY = RoutingTable()


@dataclass(frozen=True)
class TableDiff:
    added: tuple[PortRoute, ...] = ()
    removed: tuple[PortRoute, ...] = ()
    # (old, new) pairs for the same key whose backends or service differ
    changed: tuple[tuple[PortRoute, PortRoute], ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def diff_tables(old: RoutingTable, new: RoutingTable) -> TableDiff:
    added = tuple(r for k, r in new.routes.items() if k not in old.routes)
    removed = tuple(r for k, r in old.routes.items() if k not in new.routes)
    changed = tuple(
        (old.routes[k], r) for k, r in new.routes.items() if k in old.routes and old.routes[k] != r
    )
    return TableDiff(added, removed, changed)
