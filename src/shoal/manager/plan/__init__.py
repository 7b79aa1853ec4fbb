"""Plans: what a change to services would do, before it is made (``--dry-run``).

The change is made on a copy of the store, where the leader's own orchestrators, allocator and
scheduler react to it, with every node's agent and time simulated; the plan is the difference
between the copy's tasks before and after. The real cluster is never touched.
"""

from shoal.manager.plan.outcome import ServiceOutcome, TaskChange
from shoal.manager.plan.planner import (
    Plan,
    ServiceChange,
    plan_changes,
    plan_service_create,
    plan_service_update,
)
from shoal.manager.plan.sandbox import Sandbox

__all__ = [
    "Plan",
    "Sandbox",
    "ServiceChange",
    "ServiceOutcome",
    "TaskChange",
    "plan_changes",
    "plan_service_create",
    "plan_service_update",
]
