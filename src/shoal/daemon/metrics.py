"""``shoal daemon --metrics-addr HOST:PORT``: the node's metrics for Prometheus, served at
``/metrics`` over plain HTTP as dockerd serves its own (off unless the flag is given).

A scrape reads the process-wide instruments (``shoal.metrics``), this node's manager if it
runs one (``shoal.manager.metrics``), the node's own swarm membership, and the process'
(``process_*``, ``python_*``, as dockerd has its ``process_*`` and ``go_*``).
"""

import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.aiohttp import make_aiohttp_handler
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from shoal.api.types import NodeRole
from shoal.manager.metrics import ManagerCollector
from shoal.metrics import INSTRUMENTS

if TYPE_CHECKING:
    from shoal.daemon.node import NodeDaemon

log = logging.getLogger(__name__)

METRICS_PATH = "/metrics"


class MetricsServerError(OSError):
    """The metrics address could not be listened on (the daemon stops, as dockerd does)."""


class NodeCollector(Collector):
    """swarmkit's node metrics: whether this node is a manager, and which swarm it is in."""

    def __init__(self, daemon: "NodeDaemon") -> None:
        self._daemon = daemon

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        state = self._daemon.state
        manager = state is not None and state.Role == NodeRole.MANAGER
        yield GaugeMetricFamily(
            "swarm_node_manager", "Whether this node is a manager or not", value=int(manager)
        )
        info = GaugeMetricFamily(
            "swarm_node_info", "Information related to the swarm", labels=["swarm_id", "node_id"]
        )
        if state is not None:
            info.add_metric([state.ClusterID, state.NodeID], 1)
        yield info


def node_registry(daemon: "NodeDaemon") -> CollectorRegistry:
    """Everything one node's /metrics shows."""
    # Collectors whose families are known only by collecting (the manager's, the
    # instruments') are collected for a scrape restricted to some names (``?name[]=...``)
    # too: without this, such a scrape found none of their metrics.
    registry = CollectorRegistry(auto_describe=False, support_collectors_without_names=True)
    registry.register(INSTRUMENTS)
    registry.register(ManagerCollector(lambda: daemon.manager))
    registry.register(NodeCollector(daemon))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def parse_metrics_addr(addr: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9323`` for IPv6) into its host and port; ValueError if not."""
    host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"invalid metrics address {addr!r}: want HOST:PORT")
    return host.removeprefix("[").removesuffix("]"), int(port)


def metrics_app(daemon: "NodeDaemon") -> web.Application:
    app = web.Application()
    app.router.add_get(METRICS_PATH, make_aiohttp_handler(node_registry(daemon)))
    return app


async def serve_metrics(daemon: "NodeDaemon", addr: str) -> web.AppRunner:
    """Listen on ``addr``; the error says why not as dockerd's does."""
    host, port = parse_metrics_addr(addr)
    runner = web.AppRunner(metrics_app(daemon), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as err:
        await runner.cleanup()
        # Go's words for the errno (aiohttp's strerror repeats the address).
        reason = os.strerror(err.errno).lower() if err.errno else str(err)
        raise MetricsServerError(
            err.errno, f"failed to start metrics server: listen tcp {addr}: bind: {reason}"
        ) from None
    log.info("metrics served on http://%s%s", addr, METRICS_PATH)
    return runner
