"""The allocator: cluster-wide published ports for services (``allocate_endpoint``, called by
the control API), and the loop that moves new tasks to pending (``Allocator``)."""

from shoal.manager.allocator.allocator import PENDING_MESSAGE, Allocator
from shoal.manager.allocator.ports import (
    DYNAMIC_PORT_END,
    DYNAMIC_PORT_START,
    IngressPorts,
    allocate_endpoint,
)

__all__ = [
    "DYNAMIC_PORT_END",
    "DYNAMIC_PORT_START",
    "PENDING_MESSAGE",
    "Allocator",
    "IngressPorts",
    "allocate_endpoint",
]
