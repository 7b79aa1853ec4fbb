"""Choosing the data path: the kernel's where this node can have it, else userspace.

The kernel path needs Linux, CAP_NET_ADMIN in this network namespace, the ``nft`` tool and
a kernel with nftables NAT, ``numgen``, ``fib`` and masquerade. We don't guess any of that
from versions: we ask the kernel to check a sample of the very ruleset we would install
(``nft --check``, which validates the batch in the kernel and commits nothing), and we
need at least one node address the rules can serve (a node published only on loopback
addresses, such as a local cluster on 127.0.0.x, gets the userspace path).
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from shoal.errors import Unavailable
from shoal.network.datapath import DataPath, MeshConfig
from shoal.network.nft_ruleset import kernel_address, render
from shoal.network.nftables import NftablesDataPath, NftError, run_nft
from shoal.network.routing import Backend, PortRoute, RoutingTable
from shoal.network.userspace import UserspaceDataPath

CAP_NET_ADMIN = 12

_SAMPLE = RoutingTable.of(
    [
        PortRoute("tcp", 1, "probe", (Backend("192.0.2.1", 1), Backend("192.0.2.2", 1))),
        PortRoute("udp", 1, "probe", (Backend("192.0.2.1", 1),)),
    ]
)


@dataclass(frozen=True)
class Probe:
    ok: bool
    reason: str


def has_cap_net_admin(status: Path = Path("/proc/self/status")) -> bool:
    try:
        for line in status.read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> CAP_NET_ADMIN & 1)
    except (OSError, ValueError, IndexError):
        pass
    return False


async def probe_kernel_path(config: MeshConfig, nft: str = "nft") -> Probe:
    if not sys.platform.startswith("linux"):
        return Probe(False, f"not Linux ({sys.platform})")
    if config.addresses is not None and not any(kernel_address(a) for a in config.addresses):
        return Probe(
            False,
            "published on loopback or IPv6 addresses only, which nftables DNAT cannot serve "
            "without route_localnet",
        )
    if not has_cap_net_admin():
        return Probe(False, "no CAP_NET_ADMIN")
    path = shutil.which(nft)
    if path is None:
        return Probe(False, "the nft tool is not installed")
    sample = render(_SAMPLE, config.addresses, config.nft_table, config.nft_mark)
    try:
        await run_nft(sample.text, "--check", nft=path)
    except NftError as e:
        return Probe(False, f"nftables NAT not usable: {e}")
    except OSError as e:
        return Probe(False, f"cannot run nft: {e}")
    return Probe(True, "Linux with CAP_NET_ADMIN and nftables NAT")


async def choose_data_path(config: MeshConfig, nft: str = "nft") -> DataPath:
    """The data path for this node; ``config.data_path`` forces one. Forcing nftables where
    it cannot work is an error rather than a silent fallback."""
    if config.data_path == "userspace":
        return UserspaceDataPath(config, "forced by configuration")
    probe = await probe_kernel_path(config, nft)
    if config.data_path == "nftables":
        if not probe.ok:
            raise Unavailable(f"nftables data path unavailable: {probe.reason}")
        return NftablesDataPath(config, "forced by configuration", nft=nft)
    if probe.ok:
        return NftablesDataPath(config, probe.reason, nft=nft)
    return UserspaceDataPath(config, probe.reason)
