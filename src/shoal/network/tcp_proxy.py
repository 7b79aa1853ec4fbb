"""The userspace TCP proxy of one published port: accept, pick a backend, splice bytes.

Built on asyncio Protocols and transports, not streams: each chunk read on one side is
handed straight to the other side's transport, which sends it at once when its buffer is
empty (the common case), so a request costs one recv and one send per direction and no task
switch. Backpressure is the transports' own: when one side's write buffer passes its high
water mark, that side's protocol gets ``pause_writing`` and stops reading the other side
until ``resume_writing``. asyncio sets TCP_NODELAY on TCP transports.

Half-close: EOF from one side is passed on as a shutdown(SHUT_WR) to the other and the
opposite direction stays open; the pair closes when both directions have ended. A side that
closes or is reset takes the other side with it (a reset is passed on as a reset, so that a
client sees a response was cut short rather than a clean end).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Sequence

from shoal.clock import Clock
from shoal.network.balancer import Balancer
from shoal.network.routing import PortRoute

log = logging.getLogger(__name__)

_LINGER_RESET = struct.pack("ii", 1, 0)
LISTEN_BACKLOG = 4096


def _reset(transport: asyncio.BaseTransport) -> None:
    """Close with an RST rather than a FIN, so the peer sees an error, not an end."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        except OSError:
            pass
    transport.abort()  # type: ignore[attr-defined]


class _Side(asyncio.Protocol):
    """One socket of a spliced pair. ``peer`` is the other side's transport."""

    __slots__ = ("conn", "early", "eof", "peer", "transport")

    def __init__(self, conn: _Connection) -> None:
        self.conn = conn
        self.transport: asyncio.Transport | None = None
        self.peer: asyncio.Transport | None = None
        self.eof = False
        # What arrived before the pair was linked: a backend that speaks first can be read
        # before the coroutine that connected it resumes, and uvloop may deliver client
        # data despite pause_reading in connection_made.
        self.early: list[bytes] = []

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is None:
            self.early.append(data)
            return
        peer.write(data)

    def eof_received(self) -> bool:
        self.eof = True
        if self.peer is not None:  # else passed on when linked
            self.conn.half_closed(self)
        return True  # keep the other direction open

    def link(self, peer: asyncio.Transport) -> None:
        self.peer = peer
        if self.early:
            peer.writelines(self.early)
            self.early.clear()
        if self.eof and peer.can_write_eof():
            peer.write_eof()

    def pause_writing(self) -> None:
        # Our side's buffer is full: stop reading the side that fills it.
        if self.peer is not None:
            self.peer.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None:
            self.peer.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.lost(self, exc)


class _ClientSide(_Side):
    __slots__ = ()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        # Nothing is read from the client until a backend has accepted.
        transport.pause_reading()  # type: ignore[attr-defined]
        self.conn.accepted()


class _BackendSide(_Side):
    __slots__ = ()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]


class _Connection:
    """A client connection and, once connected, its backend connection."""

    __slots__ = ("backend", "client", "closed", "proxy", "task")

    def __init__(self, proxy: TcpProxy) -> None:
        self.proxy = proxy
        self.client = _ClientSide(self)
        self.backend: _BackendSide | None = None
        self.task: asyncio.Task[None] | None = None
        self.closed = False

    def accepted(self) -> None:
        self.proxy.connections.add(self)
        self.task = asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        proxy = self.proxy
        loop = asyncio.get_running_loop()
        for backend in proxy.balancer.candidates(proxy.clock.monotonic()):
            side = _BackendSide(self)
            try:
                async with asyncio.timeout(proxy.connect_timeout):
                    await loop.create_connection(lambda s=side: s, backend.addr, backend.port)
            except (OSError, TimeoutError) as e:
                log.debug("%s: backend %s failed: %s", proxy.route, backend, e)
                proxy.balancer.mark_refused(backend, proxy.clock.monotonic())
                if self.closed:
                    return
                continue
            proxy.balancer.mark_ok(backend)
            if self.closed:  # the client left while we were connecting
                side.transport.close()  # type: ignore[union-attr]
                return
            self._link(side)
            return
        # No backend at all, or every one failed: the client sees a reset, as it would
        # from a port with nothing behind it.
        self.closed = True
        proxy.connections.discard(self)
        _reset(self.client.transport)  # type: ignore[arg-type]

    def _link(self, side: _BackendSide) -> None:
        self.backend = side
        self.client.link(side.transport)  # type: ignore[arg-type]
        side.link(self.client.transport)  # type: ignore[arg-type]
        if self.client.eof and side.eof:
            self.close()
            return
        self.client.transport.resume_reading()  # type: ignore[union-attr]

    def half_closed(self, side: _Side) -> None:
        other = self.backend if side is self.client else self.client
        if other is None or other.transport is None:
            return
        if other.eof:
            self.close()
        elif other.transport.can_write_eof():
            other.transport.write_eof()

    def lost(self, side: _Side, exc: Exception | None) -> None:
        other = self.backend if side is self.client else self.client
        if not self.closed and other is not None and other.transport is not None:
            if side.early and exc is None:  # a backend that spoke and left before linking
                other.transport.writelines(side.early)
            if exc is None:
                other.transport.close()  # after sending what is buffered
            else:
                _reset(other.transport)
        self.closed = True
        self.proxy.connections.discard(self)
        if side is self.client and self.task is not None and not self.task.done():
            self.task.cancel()  # still connecting to a backend for a client that left

    def close(self) -> None:
        self.closed = True
        self.proxy.connections.discard(self)
        for side in (self.client, self.backend):
            if side is not None and side.transport is not None:
                side.transport.close()

    def abort(self) -> None:
        self.closed = True
        if self.task is not None and not self.task.done():
            self.task.cancel()
        for side in (self.client, self.backend):
            if side is not None and side.transport is not None:
                side.transport.abort()


class TcpProxy:
    """Listens on one published TCP port on the given addresses (None: all of them)."""

    def __init__(
        self,
        route: PortRoute,
        addresses: Sequence[str] | None,
        clock: Clock,
        connect_timeout: float = 3.0,
    ) -> None:
        self.route = route
        self.addresses = list(addresses) if addresses is not None else None
        self.clock = clock
        self.connect_timeout = connect_timeout
        self.balancer = Balancer(route.backends)
        self.connections: set[_Connection] = set()
        self._servers: list[asyncio.Server] = []

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        hosts: list[str | None] = list(self.addresses) if self.addresses is not None else [None]
        try:
            for host in hosts:
                server = await loop.create_server(
                    lambda: _Connection(self).client,
                    host,
                    self.route.port,
                    reuse_address=True,
                    backlog=LISTEN_BACKLOG,
                )
                self._servers.append(server)
        except BaseException:
            await self.stop()
            raise

    def update(self, route: PortRoute) -> None:
        """New backends for new connections; established ones carry on where they are."""
        self.route = route
        self.balancer.set_backends(route.backends)

    async def stop(self) -> None:
        servers, self._servers = self._servers, []
        for s in servers:
            s.close()
        for conn in list(self.connections):
            conn.abort()
        self.connections.clear()
        for s in servers:
            await s.wait_closed()

    @property
    def sockets(self) -> list[socket.socket]:
        return [sock for s in self._servers for sock in s.sockets]  # type: ignore[misc]
