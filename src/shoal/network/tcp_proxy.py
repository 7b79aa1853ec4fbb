"""The userspace TCP proxy of one published port: accept, pick a backend, splice bytes.

Built on non-blocking sockets watched by the event loop (``loop.add_reader`` /
``add_writer``), not on transports and protocols: a readable socket calls straight into
the flow that reads it, which ``recv``s a chunk and ``send``s it on to the other socket at
once, so a request costs one recv and one send per direction and a handful of Python calls.
Connecting to a backend is a non-blocking ``connect`` and a writer callback, with no Task,
Future or transport to build per connection. Profiled against the same proxy on asyncio
transports (bench/mesh.py), this accepts and connects about twice the connections per
second and forwards about 15% more keep-alive requests per second; most of what remains is
the kernel's own work in ``send`` and ``recv``. Works on uvloop as on asyncio's own loop.

Backpressure: when the receiving socket takes only part of a chunk, the rest is kept, the
flow stops reading its source and waits for the destination to be writable; so at most one
chunk per direction waits in the proxy, and a slow reader holds back the sender through TCP
itself. Every socket has TCP_NODELAY, as asyncio's transports set it.

Half-close: EOF from one side is passed on as a shutdown(SHUT_WR) to the other (after what
is still buffered) and the opposite direction stays open; the pair closes when both
directions have ended. A side that is reset, or that cannot be written to, takes the other
side with it as a reset (SO_LINGER 0), so that a client sees a response was cut short
rather than a clean end.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import struct
from collections.abc import Sequence

from shoal import metrics
from shoal.clock import Clock
from shoal.network.balancer import Balancer
from shoal.network.routing import Backend, PortRoute

log = logging.getLogger(__name__)

_LINGER_RESET = struct.pack("ii", 1, 0)
LISTEN_BACKLOG = 4096
# The most one recv takes, and so the most one direction holds in the proxy.
CHUNK = 256 * 1024
# Connections accepted per wake-up of a listening socket, before others get a turn.
ACCEPT_BATCH = 128
# After running out of file descriptors, stop accepting for this long (as asyncio does).
ACCEPT_RETRY_DELAY = 1.0
_AGAIN = (BlockingIOError, InterruptedError)
# Bound once: a labelled child costs a lookup each time it is named.
_ACCEPTED = metrics.MESH_CONNECTIONS.labels("tcp")
_OPEN = metrics.MESH_ACTIVE_CONNECTIONS.labels("tcp")


def _close(loop: asyncio.AbstractEventLoop, sock: socket.socket, reset: bool = False) -> None:
    """Stop watching ``sock`` and close it; with ``reset``, with an RST rather than a FIN,
    so the peer sees an error, not an end."""
    fd = sock.fileno()
    if fd < 0:
        return
    loop.remove_reader(fd)
    loop.remove_writer(fd)
    if reset:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        except OSError:
            pass
    sock.close()


def _stream_socket(addr: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class _Flow:
    """One direction of a spliced pair: bytes read from ``src`` are sent to ``dst``."""

    __slots__ = ("conn", "done", "dst", "dst_fd", "eof", "loop", "pending", "src", "src_fd")

    def __init__(self, conn: _Connection, src: socket.socket, dst: socket.socket) -> None:
        self.conn = conn
        self.loop = conn.loop
        self.src = src
        self.dst = dst
        self.src_fd = src.fileno()
        self.dst_fd = dst.fileno()
        self.pending: memoryview | None = None  # what dst has not taken yet
        self.eof = False  # src has ended
        self.done = False  # ... and dst has been told (shutdown)

    def start(self) -> None:
        self.loop.add_reader(self.src_fd, self.readable)

    def readable(self) -> None:
        try:
            data = self.src.recv(CHUNK)
        except _AGAIN:
            return
        except OSError:  # reset by the peer: pass the reset on
            self.conn.fail()
            return
        if not data:
            self.loop.remove_reader(self.src_fd)
            self.eof = True
            self._finish()
            return
        try:
            sent = self.dst.send(data)
        except _AGAIN:
            sent = 0
        except OSError:  # the other side is gone
            self.conn.fail()
            return
        if sent < len(data):
            self.pending = memoryview(data)[sent:]
            self.loop.remove_reader(self.src_fd)
            self.loop.add_writer(self.dst_fd, self.writable)

    def writable(self) -> None:
        pending = self.pending
        assert pending is not None
        try:
            sent = self.dst.send(pending)
        except _AGAIN:
            return
        except OSError:
            self.conn.fail()
            return
        if sent < len(pending):
            self.pending = pending[sent:]
            return
        self.pending = None
        self.loop.remove_writer(self.dst_fd)
        if self.eof:
            self._finish()
        else:
            self.loop.add_reader(self.src_fd, self.readable)

    def _finish(self) -> None:
        """src has ended: once dst has everything, shut its sending side."""
        if self.pending is not None or self.done:
            return
        self.done = True
        try:
            self.dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self.conn.flow_done()

    @property
    def buffered(self) -> int:
        return len(self.pending) if self.pending is not None else 0


class _Connection:
    """A client connection and, once connected, its backend connection."""

    __slots__ = (
        "backend",
        "candidates",
        "client",
        "closed",
        "flows",
        "loop",
        "proxy",
        "timer",
        "trying",
    )

    def __init__(self, proxy: TcpProxy, client: socket.socket) -> None:
        self.proxy = proxy
        self.loop = proxy.loop
        self.client = client
        self.backend: socket.socket | None = None
        self.flows: tuple[_Flow, _Flow] | None = None
        self.candidates: list[Backend] = []
        self.trying: Backend | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.closed = False

    # --- connecting: nothing is read from the client until a backend has accepted -----

    def connect(self) -> None:
        proxy = self.proxy
        self.candidates = proxy.balancer.candidates(proxy.clock.monotonic())
        self.candidates.reverse()  # popped from the end
        self._try_next()

    def _try_next(self) -> None:
        proxy = self.proxy
        while self.candidates:
            backend = self.candidates.pop()
            try:
                sock = _stream_socket(backend.addr)
            except OSError as e:
                log.warning("%s: no socket for %s: %s", proxy.route, backend, e)
                break
            err = sock.connect_ex((backend.addr, backend.port))
            if err in (0, errno.EINPROGRESS, errno.EINTR):
                self.backend = sock
                self.trying = backend
                self.loop.add_writer(sock.fileno(), self._connected)
                self.timer = self.loop.call_later(proxy.connect_timeout, self._timed_out)
                return
            sock.close()
            self._refused(backend, OSError(err, errno.errorcode.get(err, str(err))))
        # No backend at all, or every one failed: the client sees a reset, as it would
        # from a port with nothing behind it.
        self.close(reset=True)

    def _refused(self, backend: Backend, why: object) -> None:
        log.debug("%s: backend %s failed: %s", self.proxy.route, backend, why)
        self.proxy.balancer.mark_refused(backend, self.proxy.clock.monotonic())

    def _give_up_backend(self, why: object) -> None:
        assert self.backend is not None and self.trying is not None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        _close(self.loop, self.backend)
        self.backend = None
        self._refused(self.trying, why)
        self.trying = None
        self._try_next()

    def _timed_out(self) -> None:
        self.timer = None
        self._give_up_backend("connect timed out")

    def _connected(self) -> None:
        sock = self.backend
        assert sock is not None and self.trying is not None
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self._give_up_backend(errno.errorcode.get(err, err))
            return
        self.loop.remove_writer(sock.fileno())
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.proxy.balancer.mark_ok(self.trying)
        self.trying = None
        self.flows = (_Flow(self, self.client, sock), _Flow(self, sock, self.client))
        for flow in self.flows:
            flow.start()

    # --- ending ------------------------------------------------------------------------

    def flow_done(self) -> None:
        if self.flows is not None and all(f.done for f in self.flows):
            self.close()

    def fail(self) -> None:
        """One side was reset or cannot be written to: reset both."""
        self.close(reset=True)

    def close(self, reset: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        self.proxy.connections.discard(self)
        _OPEN.dec()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        _close(self.loop, self.client, reset)
        if self.backend is not None:
            _close(self.loop, self.backend, reset)

    @property
    def buffered(self) -> int:
        """Bytes read from one side and not yet taken by the other."""
        return sum(f.buffered for f in self.flows) if self.flows is not None else 0


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
        self._listeners: list[socket.socket] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "not started"
        return self._loop

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            for family, addr in self._bind_addresses():
                try:
                    sock = socket.socket(family, socket.SOCK_STREAM)
                except OSError:  # e.g. no IPv6 here; asyncio's create_server skips it too
                    continue
                self._listeners.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    # One socket per family, as asyncio's create_server does.
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(addr)
                sock.listen(LISTEN_BACKLOG)
                sock.setblocking(False)
            for sock in self._listeners:
                self._loop.add_reader(sock.fileno(), self._accept, sock)
        except BaseException:
            await self.stop()
            raise

    def _bind_addresses(self) -> list[tuple[int, tuple]]:
        hosts: list[str | None] = list(self.addresses) if self.addresses is not None else [None]
        found: list[tuple[int, tuple]] = []
        for host in hosts:
            infos = socket.getaddrinfo(
                host, self.route.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )
            for family, _, _, _, addr in infos:
                if (family, addr) not in found:
                    found.append((family, addr))
        return found

    def _accept(self, listener: socket.socket) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                sock, _ = listener.accept()
            except _AGAIN:
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.error("%s: cannot accept (%s); pausing", self.route, e)
                    fd = listener.fileno()
                    self.loop.remove_reader(fd)
                    self.loop.call_later(ACCEPT_RETRY_DELAY, self._resume_accepting, listener)
                    return
                continue  # the client gave up before we accepted (ECONNABORTED, ...)
            try:
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                sock.close()
                continue
            conn = _Connection(self, sock)
            self.connections.add(conn)
            _ACCEPTED.inc()
            _OPEN.inc()
            conn.connect()

    def _resume_accepting(self, listener: socket.socket) -> None:
        if listener in self._listeners:
            self.loop.add_reader(listener.fileno(), self._accept, listener)

    def update(self, route: PortRoute) -> None:
        """New backends for new connections; established ones carry on where they are."""
        self.route = route
        self.balancer.set_backends(route.backends)

    async def stop(self) -> None:
        listeners, self._listeners = self._listeners, []
        for sock in listeners:
            if self._loop is not None:
                _close(self._loop, sock)
            else:
                sock.close()
        for conn in list(self.connections):
            conn.close()
        self.connections.clear()

    @property
    def sockets(self) -> list[socket.socket]:
        return list(self._listeners)
