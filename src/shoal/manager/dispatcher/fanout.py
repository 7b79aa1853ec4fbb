"""Which parts of a node's assignments a batch of store changes can move, so that each
session recomputes only those; and (``cluster_flags``) whether a change may move anything
beyond its own node's, from which the router (router.py) decides which sessions see it. Most
changes in a large cluster are tasks that have no published port, no overlay network and no
secret, and move nothing a node is sent but its own tasks. Pure."""

from collections.abc import Iterable
from dataclasses import dataclass

from shoal.api.objects import Config, Secret, Task
from shoal.store import Event

# Events whose flags are remembered: the router works them out as it routes an event, and
# the sessions it reaches look them up within a batch window, so recent ones are enough.
REMEMBERED = 20_000


@dataclass
class Affected:
    routes: bool = False  # the routing mesh's table (ingress_routes)
    networks: bool = False  # the node's network map (network_map)
    dependencies: bool = False  # the node's secrets and configs (node_dependencies)


def cluster_flags(ev: Event) -> tuple[bool, bool]:
    """Whether the event may move the routing table, and any node's network map."""
    if isinstance(ev.obj, Secret | Config):
        return False, False
    if not isinstance(ev.obj, Task):
        # A service (its ports, VIPs), node (its address), network or the cluster (the data
        # path port): may move the table and the map.
        return True, True
    routes = networks = False
    for task in (ev.obj, ev.old):
        if isinstance(task, Task):
            # The table lists tasks by the host ports they report; the map, tasks by their
            # network attachments.
            routes = routes or bool(task.Status.PortStatus.Ports)
            networks = networks or bool(task.NetworksAttachments)
    return routes, networks


class SharedFlags:
    """``cluster_flags`` of each event, worked out once for the router and all the sessions
    that see it (with a thousand sessions, each looking at every event was a tenth of the
    leader's time while it created tasks)."""

    def __init__(self, limit: int = REMEMBERED) -> None:
        self._limit = limit
        self._seen: dict[int, tuple[Event, bool, bool]] = {}

    def of(self, ev: Event) -> tuple[bool, bool]:
        hit = self._seen.get(id(ev))
        if hit is not None and hit[0] is ev:
            return hit[1], hit[2]
        routes, networks = cluster_flags(ev)
        if len(self._seen) >= self._limit:
            self._seen.clear()
        self._seen[id(ev)] = (ev, routes, networks)
        return routes, networks


def references_dependencies(task: Task) -> bool:
    """Whether the task names a secret or a config: one that names none never moves its
    node's dependencies, whatever its state."""
    spec = task.Spec.ContainerSpec
    return spec is not None and bool(spec.Secrets or spec.Configs)


def affected(events: Iterable[Event], node_id: str, shared: SharedFlags | None = None) -> Affected:
    found = Affected()
    for ev in events:
        if ev.is_commit:
            continue
        routes, networks = shared.of(ev) if shared is not None else cluster_flags(ev)
        found.routes = found.routes or routes
        found.networks = found.networks or networks
        obj, old = ev.obj, ev.old
        # The dependencies are those the node's own tasks name. Checking the names first
        # matters: every status report of a node's task used to send its session through
        # all of the node's tasks again (node_dependencies, 12% of the leader's samples while
        # it created 20,000 tasks on 300 nodes).
        if isinstance(obj, Secret | Config) or any(
            isinstance(t, Task) and t.NodeID == node_id and references_dependencies(t)
            for t in (obj, old)
        ):
            found.dependencies = True
    return found
