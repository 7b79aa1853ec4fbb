"""What the replicated and the global orchestrator share: the loop, and the restart and update
supervisors through which they replace tasks."""

import asyncio
from typing import ClassVar

from shoal.clock import Clock
from shoal.manager.orchestrator.reconcile_loop import ReconcileLoop
from shoal.manager.orchestrator.restart import RestartSupervisor
from shoal.manager.orchestrator.updater import UpdateSupervisor
from shoal.store import MemoryStore


class ServiceOrchestrator(ReconcileLoop):
    KINDS: ClassVar[frozenset[str]] = frozenset({"service", "task", "node"})

    def __init__(
        self,
        store: MemoryStore,
        clock: Clock,
        *,
        restarts: RestartSupervisor | None = None,
        updates: UpdateSupervisor | None = None,
    ) -> None:
        """The manager gives both orchestrators the same supervisors (see components); one
        run on its own (in tests) makes and runs its own."""
        super().__init__(store, clock)
        self._owned: list[RestartSupervisor | UpdateSupervisor] = []
        if restarts is None:
            restarts = RestartSupervisor(store, clock)
            self._owned.append(restarts)
        if updates is None:
            updates = UpdateSupervisor(store, clock, restarts)
            self._owned.append(updates)
        self.restarts = restarts
        self.updates = updates

    async def run(self) -> None:
        children = [asyncio.create_task(c.run()) for c in self._owned]
        try:
            # Every decision here may consult the restart supervisor (and so may the updates
            # started from here): not before it has rebuilt the history a new leader needs.
            await self.restarts.recovered()
            await super().run()
        finally:
            for c in children:
                c.cancel()
