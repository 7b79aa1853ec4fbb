"""Which parts of a node's assignments a batch of store changes can move, so that each
session recomputes only those. Every session sees every change (the routing mesh and the
overlay network map are the whole cluster's business); most changes in a large cluster are
tasks that have no published port, no overlay network and no secret, on other nodes, and
move nothing a node is sent but its own tasks. Pure."""

from collections.abc import Iterable
from dataclasses import dataclass

from shoal.api.objects import Config, Secret, Task
from shoal.store import Event


@dataclass
class Affected:
    routes: bool = False  # the routing mesh's table (ingress_routes)
    networks: bool = False  # the node's network map (network_map)
    dependencies: bool = False  # the node's secrets and configs (node_dependencies)


def affected(events: Iterable[Event], node_id: str) -> Affected:
    found = Affected()
    for ev in events:
        if ev.is_commit:
            continue
        if isinstance(ev.obj, Secret | Config):
            found.dependencies = True
        elif not isinstance(ev.obj, Task):
            # A service (its ports, VIPs), node (its address), network or the cluster (the
            # data path port): may move the table and the map.
            found.routes = found.networks = True
        for task in (ev.obj, ev.old):
            if not isinstance(task, Task):
                continue
            # The table lists tasks by the host ports they report; the map, tasks by their
            # network attachments; the dependencies are those of the node's own tasks.
            if task.Status.PortStatus.Ports:
                found.routes = True
            if task.NetworksAttachments:
                found.networks = True
            if task.NodeID == node_id:
                found.dependencies = True
    return found
