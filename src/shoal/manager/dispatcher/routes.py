"""The routing mesh's table, as the managers see it: for every ingress-published port, the
running tasks of its service that connections may go to (their node's address and the host
port the task was given for that target port). Every node gets the same table through its
dispatcher session and serves each port on its own address."""

from shoal.api.objects import Node, Service, Task
from shoal.api.types import PortProtocol, PublishMode, TaskState
from shoal.network.routing import Backend, PortRoute, Protocol, RoutingTable
from shoal.store.memory import ReadTx

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
