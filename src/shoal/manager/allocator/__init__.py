"""The allocator: what services, networks and tasks are given before they run. Published ports
and virtual IPs for services (``allocate_endpoint``) and subnets and VXLAN IDs for networks
(``allocate_network``), called by the control API; and the loop that gives new tasks their
network addresses and moves them to pending (``Allocator``)."""

from shoal.manager.allocator.allocator import PENDING_MESSAGE, Allocator
from shoal.manager.allocator.endpoint import allocate_endpoint
from shoal.manager.allocator.networks import allocate_network
from shoal.manager.allocator.ports import DYNAMIC_PORT_END, DYNAMIC_PORT_START, IngressPorts

__all__ = [
    "DYNAMIC_PORT_END",
    "DYNAMIC_PORT_START",
    "PENDING_MESSAGE",
    "Allocator",
    "IngressPorts",
    "allocate_endpoint",
    "allocate_network",
]
