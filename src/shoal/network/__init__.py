"""Networking: the routing mesh (published ports answered on every node).

The node hands a ``RoutingTable`` to a ``DataPath`` chosen by ``choose_data_path``:
``NftablesDataPath`` (kernel DNAT) where the node can have it, ``UserspaceDataPath``
(asyncio proxies) elsewhere.
"""

from shoal.network.datapath import DataPath, MeshConfig
from shoal.network.nftables import NftablesDataPath
from shoal.network.routing import Backend, PortRoute, RoutingTable, TableDiff, diff_tables
from shoal.network.select import choose_data_path, probe_kernel_path
from shoal.network.userspace import UserspaceDataPath

__all__ = [
    "Backend",
    "DataPath",
    "MeshConfig",
    "NftablesDataPath",
    "PortRoute",
    "RoutingTable",
    "TableDiff",
    "UserspaceDataPath",
    "choose_data_path",
    "diff_tables",
    "probe_kernel_path",
]
