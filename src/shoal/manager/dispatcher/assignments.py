"""What one node's Assignments stream has sent, and the message a batch of store changes
makes of it: the COMPLETE set first (its tasks from ASSIGNED on, the routing table, its
network map, its secrets and configs), then INCREMENTAL messages with what changed. Pure over
the store's reads: the dispatcher feeds it the events its router delivers, a test can feed
it every event and compare. With ``SharedRoutes`` (the router's) the routing table is worked
out once for every node, rather than by each."""

import json
from collections.abc import Iterable, Mapping

from shoal.api.objects import Node, Task
from shoal.api.specs import TaskSpec
from shoal.api.types import TaskState
from shoal.manager.dispatcher.dependencies import (
    DependencyChanges,
    NodeDependencies,
    dependency_changes,
    node_dependencies,
)
from shoal.manager.dispatcher.fanout import SharedFlags, affected
from shoal.manager.dispatcher.netmap import data_path_port, network_map
from shoal.manager.dispatcher.routes import SharedRoutes, encode_routes, ingress_routes
from shoal.network.netmap import NetworkMap
from shoal.network.routing import RoutingTable
from shoal.rpc import pb
from shoal.store import Event
from shoal.store.memory import ReadTx


def _dependency_fields(changes: DependencyChanges) -> dict[str, list]:
    return {
        "update_secrets": [s.model_dump_json().encode() for s in changes.update_secrets],
        "remove_secrets": changes.remove_secrets,
        "update_configs": [c.model_dump_json().encode() for c in changes.update_configs],
        "remove_configs": changes.remove_configs,
    }


class NodeAssignments:
    def __init__(
        self, node_id: str, flags: SharedFlags | None = None, routes: SharedRoutes | None = None
    ) -> None:
        self.node_id = node_id
        self._flags = flags
        self._shared_routes = routes
        # Of each task the node was sent, what would make it send the task again (its desired
        # state and spec: its status is the agent's own, not echoed). Not the Task: that would
        # keep the version sent alive after the store moved on (every task of the node, about
        # 1 KB each, as each goes from ASSIGNED to RUNNING; bench/memory.py).
        self.sent: dict[str, tuple[TaskState, TaskSpec]] = {}
        self.routes = RoutingTable()
        self.networks = NetworkMap()
        # Whether any task of the node has a network attachment (see _network_map_after).
        self._attached = True
        self.dependencies = NodeDependencies()

    def _routes_now(self, view: ReadTx) -> RoutingTable:
        shared = self._shared_routes
        return shared.table(view) if shared is not None else ingress_routes(view)

    def _encoded_routes(self) -> bytes:
        shared = self._shared_routes
        return shared.encoded(self.routes) if shared is not None else encode_routes(self.routes)

    @property
    def network_ids(self) -> frozenset[str]:
        """The overlay networks in the node's map now: a change to another node's task on
        one of them may change the map."""
        return frozenset(n.id for n in self.networks.networks)

    def _network_map_after(self, events: list[Event], now: ReadTx) -> NetworkMap:
        """The node's map once ``events`` happened. A node none of whose tasks has a network
        attachment maps no network (``network_map`` only looks at attached tasks), and gets
        one only through a task event of its own with attachments: until then only its data
        path port (its node's, the cluster's) can change, which costs two look-ups instead
        of a walk over its tasks. Every node or service event made every session walk them:
        with 900 sessions of 100 tasks, 7.6% of a leader's samples while 100 nodes went down
        (issue 15, bench/fleet.py --py-spy)."""
        node_id = self.node_id
        own = any(
            isinstance(t, Task) and t.NodeID == node_id and t.NetworksAttachments
            for ev in events
            for t in (ev.obj, ev.old)
        )
        if self._attached or own:
            self._attached = any(t.NetworksAttachments for t in now.tasks_on_node(node_id))
            return network_map(now, node_id)
        # No attached task when the map was last worked out: it maps no network either.
        port = data_path_port(now.get(Node, node_id), now.cluster())
        if port == self.networks.data_path_port:
            return self.networks
        return NetworkMap(data_path_port=port)

    def complete(
        self, view: ReadTx, known: Mapping[str, str] | None = None
    ) -> pb.AssignmentsMessage:
        """The whole set. ``known``: the tasks the node says it holds, by ID, with the desired
        state it holds each in; those still in it are named, not sent again (a task's spec
        never changes: the incremental messages re-send a task for its desired state only)."""
        node_id = self.node_id
        known = known or {}
        tasks = view.tasks_on_node(node_id)
        initial = [t for t in tasks if t.Status.State >= TaskState.ASSIGNED]
        self.sent = {t.ID: (t.DesiredState, t.Spec) for t in initial}
        unchanged = [t.ID for t in initial if known.get(t.ID) == t.DesiredState]
        held = set(unchanged)
        self.routes = self._routes_now(view)
        self.networks = network_map(view, node_id)
        self._attached = any(t.NetworksAttachments for t in tasks)
        dependencies = node_dependencies(view, node_id)
        changes = dependency_changes(NodeDependencies(), dependencies)
        self.dependencies = dependencies
        return pb.AssignmentsMessage(
            type=pb.AssignmentsMessage.COMPLETE,
            update_tasks=[t.model_dump_json().encode() for t in initial if t.ID not in held],
            unchanged_tasks=unchanged,
            routes=self._encoded_routes(),
            networks=json.dumps(self.networks.to_json()).encode(),
            **_dependency_fields(changes),
        )

    def incremental(self, events: Iterable[Event], now: ReadTx) -> pb.AssignmentsMessage | None:
        """The message for a batch of events (None if they change nothing the node was
        sent); ``now``: the store with every one of them applied."""
        events = list(events)
        node_id = self.node_id
        sent = self.sent
        updates: dict[str, Task] = {}
        removes: set[str] = set()
        for ev in events:
            if ev.is_commit or not isinstance(ev.obj, Task):
                continue
            task: Task = ev.obj
            mine = ev.action != "remove" and task.NodeID == node_id
            if not mine or task.Status.State < TaskState.ASSIGNED:
                # Also one that came and went within the batch: the node is not sent it (it
                # hears of it no more, its changes going to its new node only).
                updates.pop(task.ID, None)
                if task.ID in sent:
                    removes.add(task.ID)
                continue
            prev = sent.get(task.ID)
            # The agent's own status reports come back here: don't echo them. (The store
            # shares one spec among the tasks that have it: most compare by identity.)
            if (
                prev is None
                or prev[0] != task.DesiredState
                or (prev[1] is not task.Spec and prev[1] != task.Spec)
            ):
                updates[task.ID] = task
                removes.discard(task.ID)
        for tid in removes:
            sent.pop(tid, None)
        for tid, t in updates.items():
            sent[tid] = (t.DesiredState, t.Spec)
        touched = affected(events, node_id, self._flags)
        changed_routes = changed_networks = False
        changed_dependencies = DependencyChanges([], [], [], [])
        if touched.routes:
            new_routes = self._routes_now(now)
            changed_routes = new_routes is not self.routes and new_routes != self.routes
            self.routes = new_routes
        if touched.networks:
            new_networks = self._network_map_after(events, now)
            changed_networks = new_networks != self.networks
            self.networks = new_networks
        if touched.dependencies:
            new_dependencies = node_dependencies(now, node_id)
            changed_dependencies = dependency_changes(self.dependencies, new_dependencies)
            self.dependencies = new_dependencies
        if not (updates or removes or changed_routes or changed_networks or changed_dependencies):
            return None
        return pb.AssignmentsMessage(
            type=pb.AssignmentsMessage.INCREMENTAL,
            update_tasks=[t.model_dump_json().encode() for t in updates.values()],
            remove_tasks=sorted(removes),
            routes=self._encoded_routes() if changed_routes else b"",
            networks=(json.dumps(self.networks.to_json()).encode() if changed_networks else b""),
            **_dependency_fields(changed_dependencies),
        )
