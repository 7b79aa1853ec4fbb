"""What a runtime needs of the node's overlay networks, and a task's networks in the data
plane's terms (``shoal.network.overlay``: the node's ``NodeOverlay`` implements this)."""

import ipaddress
from collections.abc import Sequence
from typing import Protocol

from shoal.api.objects import Task
from shoal.network.overlay.model import OverlayNetwork
from shoal.network.overlay.node import HostPort, TaskAttachment, TaskNetwork


class TaskNetworking(Protocol):
    async def attach(
        self,
        task_id: str,
        attachments: list[TaskAttachment],
        netns_path: str | None = None,
        ports: Sequence[HostPort] = (),
    ) -> TaskNetwork:
        """Put the task on its networks (``netns_path``: a container's namespace; None: one
        made for the task), its ``ports`` published on the node. Idempotent."""
        ...

    async def register(
        self, task_id: str, attachments: list[TaskAttachment], netns_path: str
    ) -> None:
        """A container whose interfaces Docker made (through the node's network driver):
        the node learns its endpoints."""
        ...

    async def detach(self, task_id: str) -> None:
        """The task has stopped: release what attach gave it."""
        ...


def task_attachments(task: Task) -> list[TaskAttachment]:
    """The task's networks, in the order of its spec, each with its address there."""
    out = []
    for attachment in task.NetworksAttachments or ():
        network = attachment.Network
        config = network.ipam_config
        vni = network.vxlan_id
        if config is None or config.Subnet is None or vni is None or not attachment.Addresses:
            continue
        subnet = ipaddress.IPv4Network(config.Subnet)
        gateway = config.Gateway or str(next(subnet.hosts()))
        out.append(
            TaskAttachment(
                OverlayNetwork(
                    id=network.ID,
                    name=network.Spec.Name,
                    subnet=str(subnet),
                    gateway=gateway,
                    vni=vni,
                    internal=bool(network.Spec.Internal),
                ),
                attachment.Addresses[0],
            )
        )
    return out
