"""What the Engine API needs of the node behind it: a narrow interface that the node daemon
implements, so that this package knows nothing of how a node is assembled."""

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from shoal.api.objects import Cluster
from shoal.clock import Clock
from shoal.manager.controlapi.control import ControlAPI
from shoal.rpc import pb


@dataclass(frozen=True)
class ManagerAddr:
    node_id: str  # "" where only the address is known (a worker's list)
    addr: str


@dataclass(frozen=True)
class SwarmStatus:
    """The node's place in a swarm, as `docker info` shows it."""

    local_node_state: str  # inactive | active | locked | error
    node_id: str = ""
    node_addr: str = ""
    error: str = ""
    is_manager: bool = False
    remote_managers: list[ManagerAddr] | None = None
    # Known on a manager only.
    nodes: int | None = None
    managers: int | None = None
    cluster: Cluster | None = None


@dataclass(frozen=True)
class NodeSettings:
    """How the node daemon was started, as `docker info` shows it."""

    hostname: str
    state_dir: Path
    runtimes: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)


class LogSource(Protocol):
    def subscribe(
        self, selector: pb.LogSelector, options: pb.LogSubscriptionOptions
    ) -> AsyncGenerator[list[pb.LogMessage]]:
        """Batches of log lines of the tasks the selector names (see the log broker)."""
        ...


class Backend(Protocol):
    clock: Clock

    @property
    def settings(self) -> NodeSettings: ...

    def swarm_status(self) -> SwarmStatus: ...

    def control(self) -> ControlAPI:
        """The cluster's control API, or Docker's error for a node that is no manager."""
        ...

    def logs(self) -> LogSource:
        """Where task logs are read, on a manager (Docker's error elsewhere)."""
        ...

    async def local_networks(self) -> list[dict[str, Any]]:
        """The node's own networks (its Docker Engine's: bridge, host, none...), as the engine
        shows them; none without an engine."""
        ...

    async def init(self, request: dict[str, Any]) -> str:
        """``swarm init``: the new node's ID."""
        ...

    async def join(self, request: dict[str, Any]) -> None: ...

    async def leave(self, force: bool) -> None: ...

    async def unlock(self, unlock_key: str) -> None:
        """``swarm unlock``: open a locked manager's sealed keys with the swarm's unlock key
        (Swarm's format) and start it."""
        ...
