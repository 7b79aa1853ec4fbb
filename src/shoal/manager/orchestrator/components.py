"""Everything the leader runs to orchestrate, wired together."""

from shoal.clock import Clock
from shoal.manager.component import Component
from shoal.manager.orchestrator.constraint_enforcer import ConstraintEnforcer
from shoal.manager.orchestrator.global_orchestrator import GlobalOrchestrator
from shoal.manager.orchestrator.jobs import JobOrchestrator
from shoal.manager.orchestrator.replicated import ReplicatedOrchestrator
from shoal.manager.orchestrator.restart import RestartSupervisor
from shoal.manager.orchestrator.task_reaper import TaskReaper
from shoal.manager.orchestrator.updater import UpdateSupervisor
from shoal.store import MemoryStore


def orchestration_components(store: MemoryStore, clock: Clock) -> list[Component]:
    """The orchestration loops, sharing one restart supervisor and one update supervisor.
    Start each ``run()`` (in this order) when this manager becomes leader; cancel them all
    when it stops being leader."""
    restarts = RestartSupervisor(store, clock)
    updates = UpdateSupervisor(store, clock, restarts)
    return [
        restarts,
        updates,
        ReplicatedOrchestrator(store, clock, restarts=restarts, updates=updates),
        GlobalOrchestrator(store, clock, restarts=restarts, updates=updates),
        JobOrchestrator(store, clock),
        TaskReaper(store, clock),
        ConstraintEnforcer(store, clock),
    ]
