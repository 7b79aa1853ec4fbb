"""The object model: Node, Service, Task, Cluster and their specs, with Docker's JSON names.

Attribute names are Docker's JSON field names (``Spec``, ``DesiredState``...), so an object
serialises to exactly what the Docker Engine API returns and parses what Docker clients send.
"""

from shoal.api.base import Annotations, Meta, Model, Version, utcnow
from shoal.api.objects import (
    Cluster,
    Node,
    Service,
    Task,
)
from shoal.api.types import (
    NodeAvailability,
    NodeRole,
    NodeState,
    Reachability,
    RestartCondition,
    TaskState,
)

__all__ = [
    "Annotations",
    "Cluster",
    "Meta",
    "Model",
    "Node",
    "NodeAvailability",
    "NodeRole",
    "NodeState",
    "Reachability",
    "RestartCondition",
    "Service",
    "Task",
    "TaskState",
    "Version",
    "utcnow",
]
