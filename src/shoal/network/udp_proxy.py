"""The userspace UDP proxy of one published port.

UDP has no connections, so the proxy keeps a flow per client address: a socket connected to
the backend chosen for that client's first datagram. Replies on it go back to the client
from the published port. A flow is forgotten after ``idle_timeout`` without traffic either
way, when its backend leaves the rotation, or when its backend refuses (ICMP port
unreachable), so that the client's next datagram picks a live backend.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Sequence
from typing import cast

from shoal import metrics
from shoal.clock import Clock
from shoal.network.balancer import Balancer
from shoal.network.routing import Backend, PortRoute

log = logging.getLogger(__name__)
# Bound once: a labelled child costs a lookup each time it is named.
_ACCEPTED = metrics.MESH_CONNECTIONS.labels("udp")
_OPEN = metrics.MESH_ACTIVE_CONNECTIONS.labels("udp")

Addr = tuple[str, int] | tuple[str, int, int, int]
# Datagrams held for a flow while its backend socket is being set up.
MAX_PENDING = 64


class _Flow(asyncio.DatagramProtocol):
    __slots__ = (
        "backend",
        "client",
        "last",
        "listener",
        "pending",
        "proxy",
        "task",
        "transport",
    )

    def __init__(self, proxy: UdpProxy, listener: _Listener, client: Addr, backend: Backend):
        self.proxy = proxy
        self.listener = listener
        self.client = client
        self.backend = backend
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: list[bytes] = []
        self.task: asyncio.Task[None] | None = None
        self.last = proxy.clock.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A datagram endpoint's transport (CPython 3.11's selector one does not subclass
        # DatagramTransport, so no isinstance here).
        self.transport = cast(asyncio.DatagramTransport, transport)
        for data in self.pending:
            self.transport.sendto(data)
        self.pending.clear()

    def send(self, data: bytes) -> None:
        self.last = self.proxy.clock.monotonic()
        if self.transport is not None:
            self.transport.sendto(data)
        elif len(self.pending) < MAX_PENDING:
            self.pending.append(data)

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        self.last = self.proxy.clock.monotonic()
        t = self.listener.transport
        if t is not None:
            t.sendto(data, self.client)

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, ConnectionRefusedError):
            self.proxy.balancer.mark_refused(self.backend, self.proxy.clock.monotonic())
        self.proxy.drop(self)

    def close(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
        if self.transport is not None:
            self.transport.close()
        self.pending.clear()


def _factory(protocol: _Listener) -> Callable[[], _Listener]:
    return lambda: protocol


class _Listener(asyncio.DatagramProtocol):
    def __init__(self, proxy: UdpProxy) -> None:
        self.proxy = proxy
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # as above

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        flow = self.proxy.flows.get((self, addr))
        if flow is None:
            flow = self.proxy.open_flow(self, addr)
            if flow is None:
                return
        flow.send(data)

    def error_received(self, exc: Exception) -> None:
        log.debug("%s: %s", self.proxy.route, exc)


class UdpProxy:
    """Listens on one published UDP port on the given addresses (None: all of them)."""

    def __init__(
        self,
        route: PortRoute,
        addresses: Sequence[str] | None,
        clock: Clock,
        idle_timeout: float = 30.0,
    ) -> None:
        self.route = route
        self.addresses = list(addresses) if addresses is not None else None
        self.clock = clock
        self.idle_timeout = idle_timeout
        self.balancer = Balancer(route.backends)
        self.flows: dict[tuple[_Listener, Addr], _Flow] = {}
        self._listeners: list[_Listener] = []
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        hosts = self.addresses if self.addresses is not None else _wildcards()
        try:
            for host in hosts:
                listener = _Listener(self)
                await loop.create_datagram_endpoint(
                    _factory(listener), sock=_bind_udp(host, self.route.port)
                )
                self._listeners.append(listener)
        except BaseException:
            await self.stop()
            raise
        self._sweeper = loop.create_task(self._sweep())

    def open_flow(self, listener: _Listener, client: Addr) -> _Flow | None:
        backend = self.balancer.pick(self.clock.monotonic())
        if backend is None:
            return None
        flow = _Flow(self, listener, client, backend)
        self.flows[(listener, client)] = flow
        _ACCEPTED.inc()
        _OPEN.inc()
        loop = asyncio.get_running_loop()

        async def connect() -> None:
            try:
                await loop.create_datagram_endpoint(
                    lambda: flow, remote_addr=(backend.addr, backend.port)
                )
            except OSError as e:
                log.debug("%s: backend %s: %s", self.route, backend, e)
                self.balancer.mark_refused(backend, self.clock.monotonic())
                self.drop(flow)

        flow.task = loop.create_task(connect())
        return flow

    def drop(self, flow: _Flow) -> None:
        if self.flows.get((flow.listener, flow.client)) is flow:
            del self.flows[(flow.listener, flow.client)]
            _OPEN.dec()
        flow.close()

    def update(self, route: PortRoute) -> None:
        self.route = route
        self.balancer.set_backends(route.backends)
        keep = set(route.backends)
        for flow in [f for f in self.flows.values() if f.backend not in keep]:
            self.drop(flow)

    async def _sweep(self) -> None:
        period = max(0.05, self.idle_timeout / 4)
        while True:
            await self.clock.sleep(period)
            cutoff = self.clock.monotonic() - self.idle_timeout
            for flow in [f for f in self.flows.values() if f.last <= cutoff]:
                self.drop(flow)

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for flow in list(self.flows.values()):
            self.drop(flow)
        for listener in self._listeners:
            if listener.transport is not None:
                listener.transport.close()
        self._listeners.clear()

    @property
    def sockets(self) -> list[object]:
        return [
            lst.transport.get_extra_info("socket")
            for lst in self._listeners
            if lst.transport is not None
        ]


def _wildcards() -> list[str]:
    return ["0.0.0.0", "::"] if _has_ipv6() else ["0.0.0.0"]


def _has_ipv6() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def _bind_udp(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if family == socket.AF_INET6:
            # Let the IPv4 wildcard have its own socket, as asyncio does for TCP.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
