"""The executor interface, in the spirit of swarmkit's exec.Controller.

An ``Executor`` describes what the node can run and makes a ``Controller`` per task. The
agent drives a controller through ``prepare``, ``start``, ``wait``, ``shutdown`` and
``remove`` as the task's state and desired state say (see ``lifecycle``)."""

from dataclasses import dataclass, field
from typing import Protocol

from shoal.api.objects import ContainerStatus, NodeDescription, Task
from shoal.api.specs import EndpointPortConfig


class TaskFailed(Exception):
    """The task cannot go on; the message becomes Status.Err."""

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class ExitError(TaskFailed):
    """The task's process exited with a non-zero code (or was killed by a signal)."""

    def __init__(self, exit_code: int, cause: str | None = None) -> None:
        # Swarm's wording, with the cause when it is known ("...: dockerexec: unhealthy
        # container").
        message = f"task: non-zero exit ({exit_code})"
        super().__init__(f"{message}: {cause}" if cause else message, exit_code)
        self.cause = cause


@dataclass
class NodeContext:
    """What a runtime needs to know about the node it runs on."""

    node_id: str
    hostname: str
    addr: str  # the node's address: process tasks bind published ports on it
    platform_os: str = "linux"
    platform_arch: str = ""
    labels: dict[str, str] = field(default_factory=dict)


class Controller(Protocol):
    async def prepare(self) -> None:
        """Get everything ready to start (ports, directories, images). Idempotent."""
        ...

    async def start(self) -> None:
        """Start the task. Idempotent: starting a running task does nothing."""
        ...

    async def wait(self) -> None:
        """Return when the task exits successfully; raise ExitError if it fails."""
        ...

    async def shutdown(self) -> None:
        """Stop the task gracefully (stop signal, then kill after the grace period)."""
        ...

    async def terminate(self) -> None:
        """Kill the task now."""
        ...

    async def remove(self) -> None:
        """Release everything the task holds (its logs included)."""
        ...

    def container_status(self) -> ContainerStatus | None: ...

    def port_status(self) -> list[EndpointPortConfig] | None: ...

    def update(self, task: Task) -> None:
        """The task object changed (desired state, status); keep the newest copy."""
        ...


class Executor(Protocol):
    runtimes: list[str]

    def describe(self) -> NodeDescription:
        """Resources, platform and the runtimes this executor offers."""
        ...

    def controller(self, task: Task) -> Controller: ...

    async def adopt(self) -> list[str]:
        """IDs of tasks whose processes outlived a previous agent (to re-attach to)."""
        ...

    def log_path(self, task_id: str) -> "object | None":
        """Where a task's log is, for the log publisher (None if it has none)."""
        ...
