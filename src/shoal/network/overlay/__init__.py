"""The node's overlay data plane: the kernel side of Swarm's overlay networks.

- ``NetworkSandbox``: per network, a namespace with a bridge and a VXLAN device, and the
  peer entries that send each remote task's frames to its node (sandbox.py).
- ``TaskEndpoints``: task namespaces and their interfaces on networks (endpoints.py).
- ``GatewayBridge``: the way out for tasks on non-internal networks (gateway.py).
- ``VipTables``: a task's VIP load balancing, nftables DNAT in its namespace (vip.py).
- ``open_socket_in_namespace``: a listener inside a sandbox, e.g. for DNS (netns_socket.py).

Everything converges (a restarted node adopts what it finds) and every name carries the
node's prefix (names.py), so several nodes can share one host. Plans (what to run) are
pure functions of what should be and what is (``*_plan.py``, ``vip_ruleset.py``); the
kernel is driven through iproute2 and nft in batch mode (tools.py says why).
"""

from shoal.network.overlay.endpoints import TaskEndpoints
from shoal.network.overlay.gateway import GatewayBridge
from shoal.network.overlay.model import (
    DEFAULT_DATA_PATH_PORT,
    DEFAULT_MTU,
    OverlayNetwork,
    Peer,
    mac_for_ip,
)
from shoal.network.overlay.names import NodeNames
from shoal.network.overlay.netns_socket import open_socket_in_namespace
from shoal.network.overlay.sandbox import Ensured, NetworkSandbox
from shoal.network.overlay.sweep import sweep
from shoal.network.overlay.tools import ToolError
from shoal.network.overlay.vip import VipTables, apply_vips, remove_vips

__all__ = [
    "DEFAULT_DATA_PATH_PORT",
    "DEFAULT_MTU",
    "Ensured",
    "GatewayBridge",
    "NetworkSandbox",
    "NodeNames",
    "OverlayNetwork",
    "Peer",
    "TaskEndpoints",
    "ToolError",
    "VipTables",
    "apply_vips",
    "mac_for_ip",
    "open_socket_in_namespace",
    "remove_vips",
    "sweep",
]
