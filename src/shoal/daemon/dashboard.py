"""The node's web dashboard (``--dashboard-addr``): what it is shown of the node."""

from shoal.daemon.node import NodeDaemon
from shoal.dashboard.hub import Hub
from shoal.dashboard.server import DashboardServer, parse_addr
from shoal.engineapi.event_log import EventLog
from shoal.engineapi.listeners import TLSSettings
from shoal.store import MemoryStore


class NodeDashboardSource:
    """The node's manager's store, whichever it has at the moment (none while it is a worker
    or locked), and the node's events."""

    def __init__(self, daemon: NodeDaemon) -> None:
        self._daemon = daemon
        self.events: EventLog = daemon.events

    def dashboard_store(self) -> MemoryStore | None:
        daemon = self._daemon
        if daemon.manager is None or daemon.locked:
            return None
        return daemon.manager.store

    def dashboard_node_id(self) -> str:
        state = self._daemon.state
        return state.NodeID if state is not None else ""


async def start_dashboard(
    daemon: NodeDaemon, addr: str, tls: TLSSettings | None
) -> DashboardServer:
    """Serve the dashboard on ``addr`` (HOST:PORT), with the API's TLS settings."""
    host, port = parse_addr(addr)
    server = DashboardServer(Hub(NodeDashboardSource(daemon), daemon.clock), host, port, tls)
    await server.start()
    return server
