"""The routing mesh's table, as the managers see it: for every ingress-published port, the
running tasks of its service that connections may go to (their node's address and the host
port the task was given for that target port). Every node gets the same table through its
dispatcher session and serves each port on its own address."""

from shoal.api.objects import Node, Service, Task
from shoal.api.types import PublishMode, TaskState
from shoal.network.routing import Backend, PortRoute, RoutingTable
from shoal.store.memory import ReadTx


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
            p
            for p in (service.Endpoint.Ports or [])
            if p.PublishMode == PublishMode.INGRESS
            and p.PublishedPort
            and str(p.Protocol) in ("tcp", "udp")
        ]
        if not ports or service.PendingDelete:
            continue
        running = [
            t
            for t in view.tasks_of_service(service.ID)
            if t.DesiredState == TaskState.RUNNING
            and t.Status.State == TaskState.RUNNING
            and t.NodeID
        ]
        for port in ports:
            protocol = str(port.Protocol)
            backends = []
            for task in running:
                if task.NodeID not in addrs:
                    node = view.get(Node, task.NodeID)
                    addrs[task.NodeID] = node.Status.Addr if node is not None else None
                addr = addrs[task.NodeID]
                host_port = _host_port(task, port.TargetPort, protocol)
                if addr and host_port:
                    try:
                        backends.append(Backend(addr, host_port))
                    except ValueError:
                        continue  # an address that is not an IP: nothing to forward to
            route = PortRoute(protocol, port.PublishedPort, service.ID, tuple(backends))  # type: ignore[arg-type]
            routes.setdefault(route.key, route)  # the allocator keeps ports unique anyway
    return RoutingTable.of(routes.values())
