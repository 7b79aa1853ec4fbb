"""Whether a node may run a service's tasks: what the global orchestrator decides per node.

A node *hosts* a service's task (a new one is made there) when it is ready, active, satisfies
the placement constraints and platforms, and offers the task's runtime. A paused node, or one
whose state is not known yet, *keeps* the tasks it has but gets no new one. A node that is
down, drained, gone, or no longer fits loses its tasks.
"""

from enum import Enum

from shoal.api.objects import Node, Service
from shoal.api.specs import TaskSpec
from shoal.api.types import NodeAvailability, NodeState
from shoal.manager.orchestrator.task import invalid_node, service_constraints_match


class NodeFit(Enum):
    HOST = "host"  # run one task here (create it if missing)
    KEEP = "keep"  # leave existing tasks alone, create none
    EVICT = "evict"  # shut down the tasks here


_ARCH_ALIASES = {"x86_64": "amd64", "aarch64": "arm64"}


def _arch(name: str) -> str:
    return _ARCH_ALIASES.get(name, name)


def platform_matches(spec: TaskSpec, node: Node) -> bool:
    """Placement.Platforms as swarmkit's platform filter reads it: any listed platform whose
    set fields equal the node's (x86_64 is amd64, aarch64 is arm64)."""
    platforms = spec.Placement.Platforms
    if not platforms:
        return True
    if node.Description is None:
        return False
    node_platform = node.Description.Platform
    for p in platforms:
        arch_ok = not p.Architecture or _arch(p.Architecture) == _arch(node_platform.Architecture)
        os_ok = not p.OS or p.OS == node_platform.OS
        if arch_ok and os_ok:
            return True
    return False


def offers_runtime(spec: TaskSpec, node: Node) -> bool:
    runtimes = node.Description.Runtimes if node.Description is not None else []
    return spec.runtime in runtimes


def fits_service(service: Service, node: Node) -> bool:
    """Constraints, platform and runtime: what the node must satisfy whatever its state."""
    spec = service.Spec.TaskTemplate
    return (
        service_constraints_match(service, node)
        and platform_matches(spec, node)
        and offers_runtime(spec, node)
    )


def node_fit(service: Service, node: Node | None) -> NodeFit:
    if node is None or invalid_node(node) or not fits_service(service, node):
        return NodeFit.EVICT
    if node.Spec.Availability == NodeAvailability.PAUSE:
        return NodeFit.KEEP
    if node.Status.State != NodeState.READY:
        return NodeFit.KEEP
    return NodeFit.HOST
