"""Orchestration: the leader's loops that turn services into tasks and keep them so.

- ReplicatedOrchestrator / GlobalOrchestrator: create and retire tasks for services.
- JobOrchestrator: runs replicated-job and global-job services to completion.
- RestartSupervisor: replaces stopped tasks under their restart policy.
- UpdateSupervisor / Updater: rolling updates and rollbacks.
- TaskReaper: deletes old task history and removed tasks.
- ConstraintEnforcer: rejects tasks whose node no longer fits them.

``orchestration_components(store, clock)`` builds them all, ready to ``run()``.
"""

from shoal.manager.orchestrator.components import orchestration_components
from shoal.manager.orchestrator.constraint_enforcer import ConstraintEnforcer
from shoal.manager.orchestrator.global_orchestrator import GlobalOrchestrator
from shoal.manager.orchestrator.jobs import JobOrchestrator
from shoal.manager.orchestrator.replicated import ReplicatedOrchestrator
from shoal.manager.orchestrator.restart import RestartSupervisor
from shoal.manager.orchestrator.task import is_task_dirty, new_task
from shoal.manager.orchestrator.task_reaper import TaskReaper
from shoal.manager.orchestrator.update_status import (
    apply_spec_update,
    begin_rollback,
    new_service_spec_version,
)
from shoal.manager.orchestrator.updater import Updater, UpdateSupervisor

__all__ = [
    "ConstraintEnforcer",
    "GlobalOrchestrator",
    "JobOrchestrator",
    "ReplicatedOrchestrator",
    "RestartSupervisor",
    "TaskReaper",
    "UpdateSupervisor",
    "Updater",
    "apply_spec_update",
    "begin_rollback",
    "is_task_dirty",
    "new_service_spec_version",
    "new_task",
    "orchestration_components",
]
