"""Task endpoints on overlay networks: the task's own namespace (process runtime) and one
interface per network, a veth whose other end is a port of the network's bridge in its
sandbox. A container's namespace (its path under /var/run/docker/netns) is attached the
same way; only namespaces made here are ours to delete.
"""

from __future__ import annotations

from shoal.network.overlay import namespaces
from shoal.network.overlay.model import OverlayNetwork, mac_for_ip
from shoal.network.overlay.names import BRIDGE, NodeNames
from shoal.network.overlay.tools import ToolError
from shoal.network.overlay.veth import converge_veth, delete_interface
from shoal.network.overlay.veth_plan import VethSpec


class TaskEndpoints:
    def __init__(self, names: NodeNames) -> None:
        self.names = names

    async def create_task_namespace(self, name: str) -> str:
        """The path of task namespace ``name`` (loopback up), made if it is not there."""
        path, _ = await namespaces.ensure_named(self.names.task(name))
        return path

    async def remove_task_namespace(self, name: str) -> None:
        """Deletes the namespace with its interfaces (their bridge ends, and so their
        gateway addresses, go at once, even if a process still holds the namespace)."""
        await namespaces.delete_named(self.names.task(name))

    async def attach(
        self, task_netns_path: str, network: OverlayNetwork, ifname: str, address: str
    ) -> int:
        """Gives the task ``ifname`` on ``network`` with ``address`` (bare, or a CIDR of the
        network's subnet), MAC derived from it. The network's sandbox must exist (ensure).
        Returns how many commands it took (0: it was there)."""
        cidr = network.address_cidr(address)
        spec = VethSpec(
            inner_path=task_netns_path,
            inner_name=ifname,
            address=cidr,
            mac=mac_for_ip(cidr),
            mtu=network.mtu,
            outer_name=self.names.sandbox_port(cidr),
            bridge=BRIDGE,
        )
        sandbox = self.names.path(self.names.sandbox(network.id))
        if not namespaces.is_namespace(sandbox):
            raise ToolError(f"network {network.name} has no sandbox on this node ({sandbox})")
        plan = await converge_veth(spec, sandbox)
        return plan.commands

    async def detach(self, task_netns_path: str, ifname: str) -> bool:
        """Removes the task's ``ifname`` and its bridge end; False if it had none."""
        return await delete_interface(task_netns_path, ifname)
