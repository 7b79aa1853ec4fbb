"""The node's executors, one per runtime it offers: each task goes to the executor of its
runtime (``process``, ``container``); a task whose runtime the node does not offer is
rejected, as Swarm rejects a runtime its node lacks."""

import logging
from typing import Any

from shoal.agent.exec.base import TaskFailed
from shoal.api.objects import ContainerStatus, Task
from shoal.api.specs import EndpointPortConfig

log = logging.getLogger(__name__)


class UnsupportedController:
    """A task this node cannot run: it is refused when it is prepared."""

    def __init__(self, task: Task, reason: str) -> None:
        self.task = task
        self.reason = reason

    def update(self, task: Task) -> None:
        self.task = task

    async def prepare(self) -> None:
        raise TaskFailed(self.reason)

    async def start(self) -> None:
        raise TaskFailed(self.reason)

    async def wait(self) -> None:
        raise TaskFailed(self.reason)

    async def shutdown(self) -> None:
        return None

    async def terminate(self) -> None:
        return None

    async def remove(self) -> None:
        return None

    def container_status(self) -> ContainerStatus | None:
        return None

    def port_status(self) -> list[EndpointPortConfig] | None:
        return None


class RuntimeExecutor:
    def __init__(self, executors: dict[str, Any]) -> None:
        self.executors = executors

    @property
    def runtimes(self) -> list[str]:
        return list(self.executors)

    def controller(self, task: Task) -> Any:
        runtime = task.Spec.runtime
        executor = self.executors.get(runtime)
        if executor is None:
            return UnsupportedController(task, f'unsupported runtime: "{runtime}"')
        return executor.controller(task)

    async def reconcile(self, keep: set[str]) -> None:
        """Every executor that keeps things outside the agent's own records (containers on
        an engine) removes those of tasks not in ``keep``."""
        for name, executor in self.executors.items():
            reconcile = getattr(executor, "reconcile", None)
            if reconcile is None:
                continue
            try:
                removed = await reconcile(keep)
            except Exception as err:
                log.warning("%s runtime: reconciliation failed: %s", name, err)
                continue
            if removed:
                log.info("%s runtime: removed leftovers of tasks %s", name, ", ".join(removed))
