"""What the page shows of each object: small JSON dicts made from the store's objects.

Summaries are what every page gets of every node, service and network; tasks are sent only
for the service or node a page has selected (see ``hub``), so that a cluster of many tasks
costs a page no more than its nodes and services do.
"""

import datetime as dt
from typing import Any

from shoal.api.objects import Cluster, Network, Node, Service, Task
from shoal.api.specs import EndpointPortConfig
from shoal.dashboard.tally import NodeTally

# The label ``stack deploy`` puts on what it creates (Docker's convert.LabelNamespace).
STACK_LABEL = "com.docker.stack.namespace"

Summary = dict[str, Any]


def _time(t: dt.datetime | None) -> str | None:
    if t is None:
        return None
    t = t if t.tzinfo else t.replace(tzinfo=dt.UTC)
    return t.isoformat().replace("+00:00", "Z")


def node_summary(node: Node, usage: NodeTally) -> Summary:
    description = node.Description
    resources = description.Resources if description is not None else None
    manager = node.ManagerStatus
    return {
        "id": node.ID,
        "hostname": node.name,
        "role": node.Spec.Role.value,
        "availability": node.Spec.Availability.value,
        "status": node.Status.State.value,
        "message": node.Status.Message or "",
        "addr": node.Status.Addr,
        "leader": bool(manager is not None and manager.Leader),
        "reachability": manager.Reachability.value if manager is not None else None,
        "managerAddr": manager.Addr if manager is not None else None,
        "engineVersion": description.Engine.EngineVersion if description is not None else "",
        "platform": (
            f"{description.Platform.OS}/{description.Platform.Architecture}"
            if description is not None
            else ""
        ),
        "nanoCPUs": resources.NanoCPUs if resources is not None else 0,
        "memoryBytes": resources.MemoryBytes if resources is not None else 0,
        "reservedNanoCPUs": usage.nano_cpus,
        "reservedMemoryBytes": usage.memory_bytes,
        "runningTasks": usage.running,
        "activeTasks": usage.active,
        "labels": dict(node.Spec.Labels),
        "updatedAt": _time(node.UpdatedAt),
    }


def port_text(port: EndpointPortConfig) -> str:
    """As ``service ls`` writes a port: ``*:8080->80/tcp`` (host mode: ``8080->80/tcp``)."""
    target = f"{port.TargetPort}/{port.Protocol.value}"
    if port.PublishedPort is None:
        return target
    star = "*:" if port.PublishMode.value == "ingress" else ""
    return f"{star}{port.PublishedPort}->{target}"


def service_summary(
    service: Service,
    running: int,
    desired: int,
    completed: int,
    updated: int,
) -> Summary:
    """``running``/``desired`` as ``service ls`` counts them; ``updated``: running tasks on the
    service's current spec (an update's progress)."""
    spec = service.Spec
    container = spec.TaskTemplate.ContainerSpec
    update = service.UpdateStatus
    command = [*(container.Command or []), *(container.Args or [])] if container else []
    ports = service.Endpoint.Ports or (
        spec.EndpointSpec.Ports if spec.EndpointSpec is not None else None
    )
    job = spec.Mode.ReplicatedJob
    return {
        "id": service.ID,
        "name": spec.Name,
        "mode": spec.Mode.name,
        "runtime": spec.TaskTemplate.runtime,
        "image": container.Image if container is not None else "",
        "command": command,
        "running": running,
        "desired": desired,
        "completed": completed,
        "totalCompletions": job.TotalCompletions if job is not None else None,
        "updated": updated,
        "ports": [port_text(p) for p in ports or []],
        "update": (
            {
                "state": update.State.value if update.State is not None else None,
                "startedAt": _time(update.StartedAt),
                "completedAt": _time(update.CompletedAt),
                "message": update.Message or "",
            }
            if update is not None
            else None
        ),
        "networks": [n.Target for n in spec.TaskTemplate.Networks or []],
        "stack": spec.Labels.get(STACK_LABEL),
        "labels": dict(spec.Labels),
        "createdAt": _time(service.CreatedAt),
        "updatedAt": _time(service.UpdatedAt),
    }


def network_summary(network: Network) -> Summary:
    spec = network.Spec
    ipam = network.ipam_config
    return {
        "id": network.ID,
        "name": spec.Name,
        "driver": spec.DriverConfiguration.Name if spec.DriverConfiguration else "overlay",
        "subnet": ipam.Subnet if ipam is not None else None,
        "gateway": ipam.Gateway if ipam is not None else None,
        "vxlanId": network.vxlan_id,
        "internal": bool(spec.Internal),
        "attachable": bool(spec.Attachable),
        "ingress": network.is_ingress,
        "stack": (spec.Labels or {}).get(STACK_LABEL),
        "createdAt": _time(network.CreatedAt),
    }


def cluster_summary(cluster: Cluster | None) -> Summary | None:
    if cluster is None:
        return None
    return {
        "id": cluster.ID,
        "name": cluster.Spec.Name,
        "createdAt": _time(cluster.CreatedAt),
        "taskHistory": cluster.Spec.Orchestration.TaskHistoryRetentionLimit,
    }


def task_row(task: Task) -> Summary:
    """One line of a task list, as ``service ps`` shows it (names are resolved by the page,
    which knows every node and service)."""
    status = task.Status
    container = status.ContainerStatus
    return {
        "id": task.ID,
        "serviceId": task.ServiceID,
        "slot": task.Slot,
        "nodeId": task.NodeID,
        "desired": task.DesiredState.value,
        "state": status.State.value,
        "since": _time(status.Timestamp),
        "message": status.Message,
        "error": status.Err or "",
        "exitCode": container.ExitCode if container is not None else None,
        "ports": [port_text(p) for p in status.PortStatus.Ports or []],
        "specVersion": task.SpecVersion.Index if task.SpecVersion is not None else None,
        "createdAt": _time(task.CreatedAt),
    }
