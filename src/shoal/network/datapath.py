"""The interface every routing-mesh data path offers, and the settings that shape them."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal, Protocol

from shoal.clock import Clock, SystemClock
from shoal.network.routing import RoutingTable

DataPathName = Literal["nftables", "userspace"]
DataPathChoice = Literal["auto", "nftables", "userspace"]


@dataclass
class MeshConfig:
    """How a node publishes ports (``shoal daemon`` settings)."""

    # "auto" probes for the kernel path and falls back to userspace; the others force one.
    data_path: DataPathChoice = "auto"
    # The node's own addresses that published ports answer on. None: every address of the
    # host (a real host). A local cluster gives each node its own, e.g. ["127.0.0.2"].
    addresses: list[str] | None = None
    # nftables table (family ip) the kernel path owns. Several nodes sharing one network
    # namespace (a local cluster) need one each.
    nft_table: str = "shoal"
    # Packet mark bit the kernel path uses to remember "DNATed by us, masquerade on the way
    # out". kube-proxy uses 0x4000 too; choose another bit if something here uses it.
    nft_mark: int = 0x4000
    # A UDP flow (one client address) is forgotten after this long without a datagram.
    udp_idle_timeout: float = 30.0
    # A TCP connect to a backend that neither accepts nor refuses is given up after this
    # long, and the next backend is tried.
    connect_timeout: float = 3.0
    clock: Clock = field(default_factory=SystemClock)

    def __post_init__(self) -> None:
        if self.data_path not in ("auto", "nftables", "userspace"):
            raise ValueError(f"unknown data path {self.data_path!r}")
        if self.addresses is not None:
            self.addresses = [str(ipaddress.ip_address(a)) for a in self.addresses]


class DataPath(Protocol):
    """Publishes the ports of a RoutingTable on this node.

    ``apply`` is idempotent and converges to exactly the table given (adds, changes,
    removes); connections already established survive a change of their port's backends.
    A port that cannot be served (e.g. its address is taken) is left out, reported in
    ``errors``, and tried again at the next ``apply``.
    """

    # "nftables" or "userspace": what `node inspect` reports.
    name: DataPathName
    # Why this data path was chosen (forced by configuration, or what the probe found).
    reason: str

    async def start(self) -> None: ...

    async def apply(self, table: RoutingTable) -> None: ...

    async def stop(self) -> None:
        """Remove everything the data path installed: listeners, connections, rules."""
        ...

    @property
    def table(self) -> RoutingTable:
        """The table last applied."""
        ...

    @property
    def errors(self) -> dict[str, str]:
        """Ports of the last applied table that are not served, e.g. {"8080/tcp": "..."}."""
        ...
