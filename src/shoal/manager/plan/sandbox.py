"""A copy of the cluster on which a change can be made without touching the cluster: the
store's objects in a store of their own, the leader's reconcile loops (orchestrators,
allocator, scheduler: the very code that makes the real decisions) running on it, the
nodes' agents simulated, and time simulated.

The copy shares the stored objects with the real store rather than copying them: the store's
rule that an object is cloned before it is changed (``Tx.update`` refuses the object it
read) holds for every writer, so nothing the copy does reaches the real objects, and a copy
of a large cluster costs a list per table.
"""

import asyncio
import logging
from types import TracebackType

from shoal.api.objects import OBJECT_TYPES, Task
from shoal.clock import Clock
from shoal.manager.allocator import Allocator, allocate_endpoint
from shoal.manager.component import Component
from shoal.manager.controlapi.control import ControlAPI
from shoal.manager.orchestrator import is_task_dirty, orchestration_components
from shoal.manager.plan.sim_agents import SimulatedAgents
from shoal.manager.plan.sim_clock import SimulatedClock
from shoal.manager.scheduler import Scheduler
from shoal.store import Action, Change, MemoryStore, Proposal, Subscription

log = logging.getLogger(__name__)

# Turns of the event loop without a write after which the components are taken to have
# nothing left to do until the agents or the clock move. Each step of a component (read an
# event, decide, write) takes a few turns; a hundred leave a wide margin.
QUIET_TURNS = 100
# Bounds on a plan: agent rounds and clock advances, and simulated time (a day of update
# delays is more than anyone plans).
MAX_STEPS = 20_000
MAX_SIMULATED_SECONDS = 24 * 3600.0


def copy_store(source: MemoryStore, clock: Clock) -> MemoryStore:
    """A store holding what ``source`` holds now, at the same version."""
    copy = MemoryStore(clock=clock)
    view = source.view()
    # No await between the reads: they all see one state.
    changes = [
        Change(Action.CREATE, obj) for cls in OBJECT_TYPES.values() for obj in view.list(cls)
    ]
    copy.apply(Proposal(source.version, changes))
    return copy


def leader_components(store: MemoryStore, clock: Clock) -> list[Component]:
    """The leader's loops that decide about tasks, as the daemon runs them (see
    shoal.daemon.manager): the orchestrators, then the allocator and the scheduler."""
    return [
        *orchestration_components(store, clock),
        Allocator(store, clock),
        Scheduler(store, clock),
    ]


class Sandbox:
    """``async with Sandbox(store, clock) as box``: ``box.control`` changes the copy as the
    control API would change the cluster; ``await box.settle()`` lets the cluster react."""

    def __init__(self, source: MemoryStore, clock: Clock) -> None:
        self.clock = SimulatedClock(clock.now(), clock.monotonic())
        self.store = copy_store(source, self.clock)
        # Built as the manager builds its own (shoal.manager.manager), on the copy.
        self.control = ControlAPI(
            self.store, self.clock, allocate_endpoint=allocate_endpoint, is_task_dirty=is_task_dirty
        )
        self.agents = SimulatedAgents(self.store, self.clock)
        self.rounds = 0  # agent rounds so far
        self._running: list[asyncio.Task] = []
        # Once recording: the agent round in which each task was created, and the last
        # version of every task created (kept when a task is deleted later in the plan).
        self._recording: Subscription | None = None
        self.created_in_round: dict[str, int] = {}
        self.created: dict[str, Task] = {}

    async def __aenter__(self) -> "Sandbox":
        for component in leader_components(self.store, self.clock):
            self._running.append(asyncio.create_task(component.run()))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in self._running:
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        self._running.clear()
        if self._recording is not None:
            self._recording.close()
        self.agents.close()
        self.store.close()

    def record(self) -> None:
        """From now on, note every task created (see ``created``)."""
        self._recording = self.store.watch(kinds={"task"})

    def _note(self) -> None:
        sub = self._recording
        if sub is None:
            return
        while (ev := sub.get_nowait()) is not None:
            task = ev.obj
            if not isinstance(task, Task):
                continue
            if ev.action is Action.CREATE:
                self.created_in_round[task.ID] = self.rounds
            if task.ID in self.created_in_round and ev.action is not Action.REMOVE:
                self.created[task.ID] = task

    async def quiet(self) -> None:
        """Wait until the components have made no write for ``QUIET_TURNS`` turns."""
        last, still = -1, 0
        while still < QUIET_TURNS:
            await asyncio.sleep(0)
            if self.store.version == last:
                still += 1
            else:
                last, still = self.store.version, 0
            self._note()
        for task in self._running:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise RuntimeError("a component of the plan failed") from task.exception()

    async def settle(self) -> bool:
        """Run the cluster until nothing more happens: components settle, agents take a step,
        and when neither has anything to do the clock moves to the next deadline. False if
        the plan's bounds cut it short."""
        for _ in range(MAX_STEPS):
            await self.quiet()
            if await self.agents.round():
                self.rounds += 1
                continue
            deadline = self.clock.next_deadline()
            if deadline is None:
                return True
            if deadline > MAX_SIMULATED_SECONDS:
                return False
            self.clock.advance_to_next()
        return False
