"""A cluster in miniature for plan tests: a store on a fake clock with the leader's real
components running on it (those the daemon starts, not the plan's own list of them), and
agents that move tasks one state at a time (slower than the plan's own agents, so a plan
that relied on their pacing would be caught)."""

import asyncio
from types import SimpleNamespace
from typing import Any

from shoal.api.objects import Node, Service, Task
from shoal.api.types import NodeState, TaskState
from shoal.clock import FakeClock, background_workers_pausing
from shoal.daemon.manager import manager_components
from shoal.manager.allocator import allocate_endpoint
from shoal.manager.component import Component
from shoal.manager.controlapi.control import ControlAPI
from shoal.manager.orchestrator import is_task_dirty
from shoal.store import MemoryStore, Tx


def daemon_leader_components(store: MemoryStore, clock: FakeClock) -> list[Component]:
    """The reconcile loops a daemon's manager starts when it leads."""
    manager = SimpleNamespace(store=store, clock=clock)
    return [c for factory in manager_components() for c in factory(manager)]  # type: ignore[arg-type]


_STEPS = [
    TaskState.ASSIGNED,
    TaskState.ACCEPTED,
    TaskState.PREPARING,
    TaskState.READY,
    TaskState.STARTING,
    TaskState.RUNNING,
]


def agent_step(task: Task) -> TaskState | None:
    state, desired = task.Status.State, task.DesiredState
    if not task.NodeID or state < TaskState.ASSIGNED or state > TaskState.RUNNING:
        return None
    if desired > TaskState.COMPLETE:
        return TaskState.SHUTDOWN
    if state == TaskState.RUNNING:
        return TaskState.COMPLETE if desired == TaskState.COMPLETE else None
    following = _STEPS[_STEPS.index(state) + 1]
    if desired == TaskState.READY and following > TaskState.READY:
        return None
    return following


class MiniCluster:
    def __init__(self, store: MemoryStore, clock: FakeClock) -> None:
        self.store = store
        self.clock = clock
        self.control = ControlAPI(
            store, clock, allocate_endpoint=allocate_endpoint, is_task_dirty=is_task_dirty
        )
        self._running: list[asyncio.Task] = []

    async def start(self, *nodes: Node) -> None:
        def fn(tx: Tx) -> None:
            for n in nodes:
                tx.create(n)

        await self.store.update(fn)
        for c in daemon_leader_components(self.store, self.clock):
            self._running.append(asyncio.create_task(c.run()))

    async def stop(self) -> None:
        for t in self._running:
            t.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)

    async def _quiet(self) -> None:
        last, still = -1, 0
        while still < 100:
            await asyncio.sleep(0)
            if self.store.version == last and not background_workers_pausing():
                still += 1
            else:
                last, still = self.store.version, 0

    async def _agents(self) -> bool:
        def fn(tx: Tx) -> bool:
            moved = False
            for t in tx.list(Task):
                node = tx.get(Node, t.NodeID) if t.NodeID else None
                if node is None or node.Status.State != NodeState.READY:
                    continue
                state = agent_step(t)
                if state is None:
                    continue
                changed = t.clone()
                changed.Status.State = state
                changed.Status.Timestamp = self.clock.now()
                tx.update(changed)
                moved = True
            return moved

        return await self.store.update(fn)

    async def converge(self, limit: int = 2000) -> None:
        """Until nothing moves: each agent step takes a simulated second, and time goes on
        while someone waits for it (update delays, monitor periods)."""
        for _ in range(limit):
            await self._quiet()
            await self.clock.advance(1)
            if await self._agents():
                continue
            if not self.clock.sleepers:
                await self._quiet()
                return
        raise AssertionError("the cluster did not settle")

    def tasks(self, service_id: str) -> list[Task]:
        return self.store.view().tasks_of_service(service_id)

    def service(self, ref: str) -> Service:
        return self.control.get_service(ref)

    async def create(self, spec: dict[str, Any]) -> Service:
        svc = await self.control.create_service(spec)
        await self.converge()
        return svc
