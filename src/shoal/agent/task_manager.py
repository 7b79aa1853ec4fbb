"""One task on this node: drives its controller through the lifecycle as its desired state
says, and reports every status change."""

import asyncio
import logging
from collections.abc import Callable

from shoal.agent.exec.base import Controller, TaskFailed
from shoal.agent.exec.lifecycle import OUTCOME, Step, failure_state, next_step
from shoal.api.objects import PortStatus, Task, TaskStatus
from shoal.api.types import TaskState
from shoal.clock import Clock

log = logging.getLogger(__name__)

StatusSink = Callable[[Task], None]


def more_advanced(a: TaskStatus, b: TaskStatus) -> TaskStatus:
    """Of two views of a task's status, the one further along (ties: the newer)."""
    if a.State != b.State:
        return a if a.State > b.State else b
    return a if a.Timestamp >= b.Timestamp else b


class TaskManager:
    def __init__(self, task: Task, controller: Controller, report: StatusSink, clock: Clock):
        self.task = task
        self.controller = controller
        self._report = report
        self._clock = clock
        self._changed = asyncio.Event()
        self._runner: asyncio.Task | None = None

    def start(self) -> None:
        self._runner = asyncio.create_task(self._run(), name=f"task {self.task.ID}")

    def update(self, assigned: Task) -> None:
        """The manager sent a newer copy of the task (desired state changed, usually). Our own
        status wins where it is further along: the manager may not have heard it yet. The
        task manager keeps ``assigned`` itself: the caller gives it a copy of its own."""
        task = assigned
        task.Status = more_advanced(self.task.Status, assigned.Status)
        self.task = task
        self.controller.update(task)
        self._changed.set()

    def _set_status(self, state: TaskState, message: str, err: str | None = None) -> None:
        status = self.task.Status.clone()
        status.State = state
        status.Message = message
        status.Err = err
        status.Timestamp = self._clock.now()
        if state >= TaskState.STARTING:
            cs = self.controller.container_status()
            if cs is not None:
                status.ContainerStatus = cs
            ports = self.controller.port_status()
            status.PortStatus = PortStatus(Ports=ports) if ports else PortStatus()
        self.task = self.task.model_copy(update={"Status": status})
        self._report(self.task)

    async def _perform(self, step: Step) -> None:
        if step is Step.PREPARE:
            await self.controller.prepare()
        elif step is Step.START:
            await self.controller.start()
        elif step is Step.WAIT:
            await self.controller.wait()
        elif step is Step.SHUTDOWN:
            await self.controller.shutdown()

    async def _perform_unless_changed(self, step: Step) -> bool:
        """Perform the step; False if it was abandoned because the task moved on."""
        waiter = asyncio.ensure_future(self._perform(step))
        try:
            while not waiter.done():
                self._changed.clear()
                changed = asyncio.ensure_future(self._changed.wait())
                try:
                    await asyncio.wait({waiter, changed}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    changed.cancel()
                if not waiter.done() and (
                    next_step(self.task.DesiredState, self.task.Status.State) is not step
                ):
                    return False
        finally:
            if not waiter.done():  # abandoned, or the task manager itself stops
                waiter.cancel()
                await asyncio.gather(waiter, return_exceptions=True)
        waiter.result()
        return True

    async def _run(self) -> None:
        while True:
            step = next_step(self.task.DesiredState, self.task.Status.State)
            if step is Step.NOOP:
                self._changed.clear()
                await self._changed.wait()
                continue
            try:
                if step in (Step.WAIT, Step.START):
                    # Waiting can last forever, and so can starting (a container is started
                    # once it is healthy): give way when the task's next step changes (its
                    # desired state did), not on every copy of the task that arrives.
                    if not await self._perform_unless_changed(step):
                        continue
                else:
                    await self._perform(step)
            except asyncio.CancelledError:
                raise
            except TaskFailed as err:
                # Swarm keeps the message of the step that failed ("started", "preparing")
                # and puts the cause in Err.
                self._set_status(
                    failure_state(self.task.Status.State), self.task.Status.Message, str(err)
                )
                continue
            except Exception as err:
                log.exception("task %s: %s failed", self.task.ID, step.value)
                self._set_status(
                    failure_state(self.task.Status.State), self.task.Status.Message, str(err)
                )
                continue
            state, message = OUTCOME[step]
            self._set_status(state, message)

    async def stop(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
            self._runner = None

    async def remove(self) -> None:
        await self.stop()
        try:
            await self.controller.remove()
        except Exception:
            log.exception("task %s: remove failed", self.task.ID)
