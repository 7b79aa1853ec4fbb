"""The runtimes a node's agent runs tasks with, built from the daemon's settings."""

import platform
from pathlib import Path

from shoal.agent.exec.base import NodeContext
from shoal.agent.exec.container import ContainerExecutor
from shoal.agent.exec.engine import Engine
from shoal.agent.exec.process import ProcessExecutor
from shoal.agent.exec.runtimes import RuntimeExecutor
from shoal.clock import Clock
from shoal.daemon.config import DaemonConfig
from shoal.daemon.swarm_state import SwarmState
from shoal.network.overlay.docker_driver import DockerNetworkDriver


def node_context(config: DaemonConfig, state: SwarmState) -> NodeContext:
    return NodeContext(
        node_id=state.NodeID,
        hostname=config.hostname,
        addr=state.AdvertiseAddr.rsplit(":", 1)[0].strip("[]"),
        platform_os="linux",
        platform_arch=platform.machine(),
        labels=dict(config.labels),
    )


def build_executor(
    node: NodeContext,
    tasks_dir: Path,
    engine: Engine | None,
    clock: Clock,
    docker_driver: DockerNetworkDriver | None = None,
) -> RuntimeExecutor:
    """The ``process`` runtime always; the ``container`` runtime where the node has an engine,
    even while it does not answer: its tasks wait for it, and fail with Docker's own error if
    it never comes back. ``docker_driver``: how containers join overlay networks."""
    executors: dict[str, ProcessExecutor | ContainerExecutor] = {
        "process": ProcessExecutor(tasks_dir, node)
    }
    if engine is not None:
        executors["container"] = ContainerExecutor(engine, node, clock, docker_driver)
    return RuntimeExecutor(executors)
