"""The executor interface, in the spirit of swarmkit's exec.Controller.

An ``Executor`` offers runtimes and makes a ``Controller`` per task. The
agent drives a controller through ``prepare``, ``start``, ``wait``, ``shutdown`` and
``remove`` as the task's state and desired state say (see ``lifecycle``)."""

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from shoal.agent.exec.dependencies import DependencyStore
from shoal.agent.exec.files_root import TaskFilesRoot
from shoal.agent.exec.networking import TaskNetworking
from shoal.api.objects import ContainerStatus, Task
from shoal.api.specs import EndpointPortConfig
from shoal.logs.model import LogLine, LogOptions


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
    # The node's overlay networks, where it can build them; else why not.
    networking: TaskNetworking | None = None
    no_networking: str = "overlay networks are not available on this node"
    # The secrets and configs the node holds for its tasks (the agent keeps them current).
    dependencies: DependencyStore = field(default_factory=DependencyStore)
    # Where the node keeps its tasks' secret and config files (a tmpfs); None: not set up.
    files: TaskFilesRoot | None = None


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


class ControllerLogs(Protocol):
    """A controller whose task has logs (as swarmkit's exec.ControllerLogs; the agent checks
    for ``logs`` and publishes nothing for a controller without it)."""

    def logs(self, options: LogOptions) -> AsyncIterator[LogLine]:
        """The task's log lines that ``options`` select, oldest first. With
        ``options.follow``, wait for the task to start writing if it has not yet, and keep
        yielding what it writes until it has stopped and everything is read; the caller may
        also stop iterating at any time (the subscription ended, the task was removed)."""
        ...


class Executor(Protocol):
    """Makes the controller of each task of the runtimes it offers."""

    @property
    def runtimes(self) -> list[str]: ...

    def controller(self, task: Task) -> Controller: ...


@runtime_checkable
class Reconciler(Protocol):
    """An executor that keeps things outside the agent's own records (containers on an
    engine): once the agent knows the whole set of its tasks, it removes what belongs to
    tasks not in ``keep``."""

    async def reconcile(self, keep: set[str]) -> object: ...
