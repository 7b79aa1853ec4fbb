"""Building a node's agent from the daemon's settings and swarm state."""

import platform
from typing import TYPE_CHECKING, Any

from shoal.agent.agent import Agent, AgentConfig
from shoal.agent.exec.base import NodeContext
from shoal.agent.exec.container import ContainerExecutor
from shoal.agent.exec.process import ProcessExecutor
from shoal.agent.exec.runtimes import RuntimeExecutor
from shoal.daemon.swarm_state import SwarmState

if TYPE_CHECKING:
    from shoal.daemon.node import NodeDaemon


def build_agent(daemon: "NodeDaemon", state: SwarmState) -> Agent:
    cfg = daemon.config
    node = NodeContext(
        node_id=state.NodeID,
        hostname=cfg.hostname,
        addr=state.AdvertiseAddr.rsplit(":", 1)[0].strip("[]"),
        platform_os="linux",
        platform_arch=platform.machine(),
        labels=dict(cfg.labels),
    )
    executors: dict[str, Any] = {
        "process": ProcessExecutor(daemon.swarm_dir.worker_dir / "tasks", node)
    }
    if daemon.engine_monitor is not None:
        # Even while the engine does not answer: its tasks wait for it, and fail with
        # Docker's own error if it never comes back.
        executors["container"] = ContainerExecutor(daemon.engine_monitor.engine, node, daemon.clock)
    return Agent(
        AgentConfig(
            node_id=state.NodeID,
            advertise_addr=state.AdvertiseAddr,
            managers=list(state.RemoteManagers) or [state.AdvertiseAddr],
            state_dir=daemon.swarm_dir.worker_dir,
            transport=daemon.transport,
            description=daemon.description,
            on_managers=daemon.remember_managers,
            on_node=daemon.node_changed,
            on_routes=daemon.routes_changed,
            on_root_ca=daemon.roots_changed,
        ),
        RuntimeExecutor(executors),
        daemon.clock,
    )
