"""The routing mesh's table, as the managers see it: for every ingress-published port, the
running tasks of its service that connections may go to (their node's address and the host
port the task was given for that target port). Every node gets the same table through its
dispatcher session and serves each port on its own address.

``SharedRoutes``: the table worked out once for all the sessions, and again only after a change
that may move it. A task that reports a host port reaches every session (every node is sent
the table); each working the table out over the whole store was the leader's time times the
number of nodes."""

import json

from shoal.api.objects import Node, Service, Task
from shoal.api.types import PortProtocol, PublishMode, TaskState
from shoal.network.routing import Backend, PortRoute, Protocol, RoutingTable
from shoal.store.memory import MemoryStore, ReadTx

# The protocols the mesh forwards (not SCTP).
PROTOCOLS: dict[PortProtocol, Protocol] = {PortProtocol.TCP: "tcp", PortProtocol.UDP: "udp"}


def _host_port(task: Task, target: int, protocol: str) -> int | None:
    for p in task.Status.PortStatus.Ports or []:
        if p.TargetPort == target and str(p.Protocol) == protocol and p.PublishedPort:
            return p.PublishedPort
    return None


def ingress_routes(view: ReadTx) -> RoutingTable:
    routes: dict[tuple[str, int], PortRoute] = {}
    addrs: dict[str, str | None] = {}
    for service in view.list(Service):
        ports = [
            (p, p.PublishedPort, PROTOCOLS[p.Protocol])
            for p in (service.Endpoint.Ports or [])
            if p.PublishMode == PublishMode.INGRESS and p.PublishedPort and p.Protocol in PROTOCOLS
        ]
        if not ports or service.PendingDelete:
            continue
        running = [
            (t, t.NodeID)
            for t in view.tasks_of_service(service.ID)
            if t.DesiredState == TaskState.RUNNING
            and t.Status.State == TaskState.RUNNING
            and t.NodeID
        ]
        for port, published, protocol in ports:
            backends = []
            for task, node_id in running:
                if node_id not in addrs:
                    node = view.get(Node, node_id)
                    addrs[node_id] = node.Status.Addr if node is not None else None
                addr = addrs[node_id]
                host_port = _host_port(task, port.TargetPort, protocol)
                if addr and host_port:
                    try:
                        backends.append(Backend(addr, host_port))
                    except ValueError:
                        continue  # an address that is not an IP: nothing to forward to
            route = PortRoute(protocol, published, service.ID, tuple(backends))
            routes.setdefault(route.key, route)  # the allocator keeps ports unique anyway
    return RoutingTable.of(routes.values())


def encode_routes(table: RoutingTable) -> bytes:
    """The table as an Assignments message carries it."""
    return json.dumps(table.to_json()).encode()


class SharedRoutes:
    """``ingress_routes`` of the store now, kept until ``invalidate`` is called: by the one
    who sees every change as it is applied (the router) for each that may move the table
    (``fanout.cluster_flags``), and whenever it may have missed one. A ``restore`` (which
    tells nobody) drops it too."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self._table: RoutingTable | None = None
        self._restores = store.restores
        self._encoded: tuple[RoutingTable, bytes] | None = None

    def invalidate(self) -> None:
        self._table = None

    def table(self, view: ReadTx) -> RoutingTable:
        """The table; ``view``: a read of the store now (``ReadTx`` reads the committed
        state as it is, so any is)."""
        if self._table is None or self._restores != self._store.restores:
            self._restores = self._store.restores
            self._table = ingress_routes(view)
        return self._table

    def encoded(self, table: RoutingTable) -> bytes:
        """``encode_routes(table)``, encoded once for the table ``table`` returned."""
        if self._encoded is None or self._encoded[0] is not table:
            self._encoded = (table, encode_routes(table))
        return self._encoded[1]
