"""Plans of service changes: what ``service create|update|scale|rollback`` and ``stack
deploy`` would do, computed by making the change in a sandbox (see sandbox) and letting the
cluster's own components react to it there. The cluster is not touched; a change the control
API refuses is refused here with the same error.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from shoal.api.objects import Service, Task
from shoal.clock import Clock
from shoal.manager.controlapi.control import ControlAPI
from shoal.manager.plan.outcome import CREATE, ServiceOutcome, service_outcome
from shoal.manager.plan.sandbox import Sandbox
from shoal.store import MemoryStore


@dataclass
class Plan:
    services: list[ServiceOutcome] = field(default_factory=list)
    # False if the plan's bounds (steps, simulated time) stopped it before the cluster
    # settled: what it shows is then only the beginning.
    complete: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"Services": [s.to_json() for s in self.services], "Complete": self.complete}


@dataclass
class ServiceChange:
    """One change to plan: ``apply`` makes it through the control API and returns the ID of
    the service changed; ``ref`` names an existing service (None: the change creates one)."""

    operation: str  # create | update | rollback | remove
    apply: Callable[[ControlAPI], Awaitable[str]]
    ref: str | None = None


async def plan_changes(
    store: MemoryStore,
    clock: Clock,
    changes: list[ServiceChange],
    prepare: Callable[[ControlAPI], Awaitable[None]] | None = None,
) -> Plan:
    """Make ``changes`` one after another in a sandbox of ``store`` (after ``prepare``, which
    makes what they depend on, a stack's networks say) and tell what each did."""
    async with Sandbox(store, clock) as box:
        # The change is made on the copy as the cluster is now, not after letting the copy
        # settle first: the real change meets the cluster as it is (a service still in its
        # update's monitor period has the version the caller read, not the one it will have).
        view = box.store.view()
        before: dict[str, list[Task]] = {}
        services_before: dict[str, Service] = {}
        for change in changes:
            if change.ref is not None:
                service = box.control.get_service(change.ref)
                services_before[service.ID] = service
                before[service.ID] = view.tasks_of_service(service.ID)
        box.record()
        if prepare is not None:
            await prepare(box.control)
        changed: list[tuple[ServiceChange, str]] = []
        for change in changes:
            changed.append((change, await change.apply(box.control)))
        complete = await box.settle()
        view = box.store.view()
        plan = Plan(complete=complete)
        for change, sid in changed:
            # A service removed is told by its spec before the removal.
            current = view.get(Service, sid) or services_before.get(sid)
            if current is None:
                continue
            plan.services.append(
                service_outcome(
                    view,
                    current,
                    change.operation,
                    before.get(sid, []),
                    box.created,
                    box.created_in_round,
                )
            )
        return plan


async def plan_service_create(store: MemoryStore, clock: Clock, spec: dict[str, Any]) -> Plan:
    """What ``POST /services/create`` with ``spec`` would do."""

    async def apply(control: ControlAPI) -> str:
        return (await control.create_service(spec)).ID

    return await plan_changes(store, clock, [ServiceChange(CREATE, apply)])


async def plan_service_update(
    store: MemoryStore,
    clock: Clock,
    ref: str,
    version: int,
    spec: dict[str, Any] | None,
    rollback: bool = False,
) -> Plan:
    """What ``POST /services/{ref}/update`` would do (``rollback``: ``?rollback=previous``)."""

    async def apply(control: ControlAPI) -> str:
        return (await control.update_service(ref, version, spec, rollback=rollback)).ID

    operation = "rollback" if rollback else "update"
    return await plan_changes(store, clock, [ServiceChange(operation, apply, ref=ref)])
