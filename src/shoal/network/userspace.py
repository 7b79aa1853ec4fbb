"""The userspace data path: an asyncio proxy per published port, on the node's addresses.

Works anywhere Python can open sockets; no privileges needed beyond binding the ports.
"""

from __future__ import annotations

import asyncio
import logging

from shoal.network.datapath import DataPathName, MeshConfig
from shoal.network.routing import (
    EMPTY,
    PortRoute,
    Protocol,
    RouteKey,
    RoutingTable,
    diff_tables,
)
from shoal.network.tcp_proxy import TcpProxy
from shoal.network.udp_proxy import UdpProxy

log = logging.getLogger(__name__)

Proxy = TcpProxy | UdpProxy


class UserspaceDataPath:
    name: DataPathName = "userspace"

    def __init__(self, config: MeshConfig, reason: str = "forced by configuration") -> None:
        self.config = config
        self.reason = reason
        self._proxies: dict[RouteKey, Proxy] = {}
        self._table = EMPTY
        self._errors: dict[str, str] = {}
        self._lock = asyncio.Lock()

    @property
    def table(self) -> RoutingTable:
        return self._table

    @property
    def errors(self) -> dict[str, str]:
        return dict(self._errors)

    async def start(self) -> None:
        pass

    async def apply(self, table: RoutingTable) -> None:
        async with self._lock:
            # Compare against what actually runs, so that a port that failed to bind last
            # time is tried again.
            running = RoutingTable.of(p.route for p in self._proxies.values())
            diff = diff_tables(running, table)
            for route in diff.removed:
                await self._proxies.pop(route.key).stop()
            for old, new in diff.changed:
                self._proxies[old.key].update(new)
            errors: dict[str, str] = {}
            for route in diff.added:
                try:
                    self._proxies[route.key] = await self._open(route)
                except OSError as e:
                    log.warning("cannot publish %s: %s", route, e)
                    errors[str(route)] = str(e.strerror or e)
            self._errors = errors
            self._table = table

    async def _open(self, route: PortRoute) -> Proxy:
        proxy: Proxy
        if route.protocol == "tcp":
            proxy = TcpProxy(
                route, self.config.addresses, self.config.clock, self.config.connect_timeout
            )
        else:
            proxy = UdpProxy(
                route, self.config.addresses, self.config.clock, self.config.udp_idle_timeout
            )
        await proxy.start()
        return proxy

    async def stop(self) -> None:
        async with self._lock:
            proxies, self._proxies = self._proxies, {}
            for p in proxies.values():
                await p.stop()
            self._table = EMPTY
            self._errors = {}

    def proxy(self, protocol: Protocol, port: int) -> Proxy | None:
        """The proxy serving a port (tests and diagnostics)."""
        return self._proxies.get((protocol, port))
