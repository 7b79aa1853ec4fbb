"""What a node is told about an overlay network and its peers: plain values, no I/O.

The manager allocates these (subnet, gateway, VXLAN ID, task addresses) and sends them in
the node's network map; the node's data plane converges the kernel to them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

# VXLAN adds 50 bytes (outer Ethernet 14, IPv4 20, UDP 8, VXLAN 8) to every frame; 1450
# fits a 1500-byte underlay, as Docker's overlay driver assumes.
DEFAULT_MTU = 1450
DEFAULT_DATA_PATH_PORT = 4789  # IANA's VXLAN port, Swarm's default --data-path-port


def mac_for_ip(address: str) -> str:
    """The MAC Docker gives an IPv4 endpoint: 02:42 and the four bytes of the address.

    Every node derives a remote task's MAC from its address alone, so the neighbour and
    FDB entries for a peer need nothing but the address the manager allocated.
    """
    ip = ipaddress.IPv4Address(address.split("/")[0])
    return "02:42:" + ":".join(f"{b:02x}" for b in ip.packed)


@dataclass(frozen=True)
class OverlayNetwork:
    """One overlay network as a node needs it: Swarm's Network with its allocation."""

    id: str
    name: str
    subnet: str  # "10.0.1.0/24"
    gateway: str  # "10.0.1.1"
    vni: int
    internal: bool = False
    mtu: int = DEFAULT_MTU

    def __post_init__(self) -> None:
        if not self.id.isalnum():
            # It names the sandbox namespace; Swarm's IDs are 25 lower-case alphanumerics.
            raise ValueError(f"invalid network id {self.id!r}")
        net = ipaddress.IPv4Network(self.subnet)  # strict: host bits must be zero
        gw = ipaddress.IPv4Address(self.gateway)
        if gw not in net or gw in (net.network_address, net.broadcast_address):
            raise ValueError(f"gateway {gw} is not a host address of {net}")
        if not 0 < self.vni < 2**24:
            raise ValueError(f"invalid VXLAN ID {self.vni}")
        if not 68 <= self.mtu <= 65535:
            raise ValueError(f"invalid MTU {self.mtu}")
        object.__setattr__(self, "subnet", str(net))
        object.__setattr__(self, "gateway", str(gw))

    @property
    def prefixlen(self) -> int:
        return ipaddress.IPv4Network(self.subnet).prefixlen

    @property
    def gateway_cidr(self) -> str:
        return f"{self.gateway}/{self.prefixlen}"

    def address_cidr(self, address: str) -> str:
        """``address`` (bare or with a prefix length) as a CIDR of this subnet."""
        iface = ipaddress.IPv4Interface(
            address if "/" in address else f"{address}/{self.prefixlen}"
        )
        if iface.network != ipaddress.IPv4Network(self.subnet):
            raise ValueError(f"{address} is not an address of {self.subnet}")
        return str(iface)


@dataclass(frozen=True, order=True)
class Peer:
    """A task on another node: its overlay address and where that node's VXLAN listens."""

    address: str  # the task's address on the network, "10.0.1.3"
    node: str  # the node's underlay address, "198.18.0.2"
    port: int = DEFAULT_DATA_PATH_PORT  # that node's data-path port

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", str(ipaddress.IPv4Address(self.address)))
        object.__setattr__(self, "node", str(ipaddress.IPv4Address(self.node)))
        if not 0 < self.port < 65536:
            raise ValueError(f"invalid data-path port {self.port}")

    @property
    def mac(self) -> str:
        return mac_for_ip(self.address)
