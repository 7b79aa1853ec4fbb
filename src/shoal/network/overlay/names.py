"""Every name a node gives to what it creates in the kernel, from its per-node prefix.

Several nodes may share one host (a local cluster, tests), and named network namespaces
(``/run/netns``) are shared by the whole machine even when the nodes run in network
namespaces of their own; so every namespace, every link in the node's namespace and every
nftables table starts with the node's prefix. Links inside a sandbox or a task namespace
belong to one node and need no prefix.

Interface names are at most 15 bytes (IFNAMSIZ - 1). The longest link name here is a
gateway port, ``<prefix>g`` and eight hex digits, so a prefix has at most 6 characters.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

IFNAMSIZ = 15
NETNS_DIR = "/run/netns"
_PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{0,5}$")
_TASK_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")

# Fixed names inside a sandbox (one per node and network, so no prefix is needed).
BRIDGE = "br0"
VXLAN = "vxlan0"


def check_ifname(name: str) -> str:
    if not 0 < len(name.encode()) <= IFNAMSIZ or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"invalid interface name {name!r} (at most {IFNAMSIZ} characters)")
    return name


def ip_hex(address: str) -> str:
    return ipaddress.IPv4Address(address.split("/")[0]).packed.hex()


@dataclass(frozen=True)
class NodeNames:
    prefix: str = "shoal"

    def __post_init__(self) -> None:
        if not _PREFIX_RE.match(self.prefix):
            raise ValueError(
                f"invalid node prefix {self.prefix!r}: a lower-case letter, then at most "
                "5 lower-case letters or digits"
            )

    # Named network namespaces (no length limit beyond a file name).
    def sandbox(self, network_id: str) -> str:
        return f"{self.prefix}-{network_id[:10]}"

    def task(self, name: str) -> str:
        if not _TASK_RE.match(name):
            raise ValueError(f"invalid task namespace name {name!r}")
        return f"{self.prefix}-t-{name}"

    def is_ours(self, netns_name: str) -> bool:
        return netns_name.startswith(self.prefix + "-")

    @staticmethod
    def path(netns_name: str) -> str:
        return f"{NETNS_DIR}/{netns_name}"

    # Links in the node's namespace.
    @property
    def gateway_bridge(self) -> str:
        return f"{self.prefix}gw"

    def gateway_port(self, address: str) -> str:
        """The bridge end of a task's gateway veth, named after the task's address so that
        the addresses in use can be read back from the bridge's ports after a restart."""
        return f"{self.prefix}g{ip_hex(address)}"

    def gateway_port_address(self, link_name: str) -> str | None:
        """The address a gateway port name stands for, or None if it is not one of ours."""
        head = f"{self.prefix}g"
        tail = link_name[len(head) :]
        if not link_name.startswith(head) or not re.fullmatch(r"[0-9a-f]{8}", tail):
            return None
        return str(ipaddress.IPv4Address(bytes.fromhex(tail)))

    # Links in a sandbox: the bridge end of a task's veth, named after the task's address
    # (unique on the network), so a restarted node finds it again.
    @staticmethod
    def sandbox_port(address: str) -> str:
        return f"ve{ip_hex(address)}"

    # nftables tables (family ip).
    @property
    def gateway_table(self) -> str:
        return f"{self.prefix}_gw"

    @property
    def vip_table(self) -> str:
        return f"{self.prefix}_vip"
