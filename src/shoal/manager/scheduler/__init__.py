"""The scheduler: assigns each pending task to a node that can run it.

``Scheduler(store, clock).run()`` is the reconcile loop; ``Planner``/``plan`` the decisions
(filter pipeline, ranking, placement of a batch over a ``NodeSet``), usable without the loop.
"""

from shoal.manager.scheduler.filters import (
    ConstraintFilter,
    Filter,
    HostPortFilter,
    MaxReplicasFilter,
    PlatformFilter,
    PluginFilter,
    ReadyFilter,
    ResourceFilter,
    RuntimeFilter,
    default_filters,
)
from shoal.manager.scheduler.nodeinfo import NodeInfo
from shoal.manager.scheduler.nodeset import NodeSet
from shoal.manager.scheduler.pipeline import Pipeline, no_suitable_node
from shoal.manager.scheduler.planner import (
    ASSIGNED_MESSAGE,
    PREASSIGNED_MESSAGE,
    Plan,
    Planner,
    plan,
)
from shoal.manager.scheduler.scheduler import Scheduler

__all__ = [
    "ASSIGNED_MESSAGE",
    "PREASSIGNED_MESSAGE",
    "ConstraintFilter",
    "Filter",
    "HostPortFilter",
    "MaxReplicasFilter",
    "NodeInfo",
    "NodeSet",
    "Pipeline",
    "Plan",
    "Planner",
    "PlatformFilter",
    "PluginFilter",
    "ReadyFilter",
    "ResourceFilter",
    "RuntimeFilter",
    "Scheduler",
    "default_filters",
    "no_suitable_node",
    "plan",
]
