"""The overlay resolver served over UDP and TCP: one ``DnsServer`` per node.

The node opens, in each network sandbox, a UDP and a TCP socket bound to the network's
gateway address, port 53, and hands them to the server (``add``; ``remove`` when the
sandbox goes). For each query the server asks ``who(source address)`` for the records of
the networks the asking task is on, in its order (None: not one of our tasks, REFUSED),
and lets resolver.py decide. Records are read through ``who`` on every query, so tasks
coming and going need no reload. Names the resolver does not own go to the upstream
resolvers through forwarder.py, from the daemon's namespace.

Sockets: the server owns the sockets it is given. It closes them on ``remove`` and
``stop``; asyncio's TCP server closes a listening socket it was given anyway, and one rule
for both kinds is easier to get right. A caller that wants to keep a socket hands over a
``dup()``.

Answers are kept rendered (cache.py) and sent again, with the new query's ID, to the same
question from a task on the same records: most queries then cost a dictionary lookup
rather than parsing and rendering by dnspython.

UDP is served from the socket directly (``loop.add_reader``, up to ``UDP_BATCH``
datagrams per wake-up): a query answered from the records costs a recvfrom, the resolver
and a sendto, with no Task or Future. A reply the socket cannot take right now is dropped,
as a router would drop it; the client asks again. Only forwarded queries, which wait on an
upstream, get a Task each; at most ``max_forwards`` at a time, as each holds a socket (the
daemon's file descriptors are shared with everything else it does). Beyond that a query
gets SERVFAIL at once: queued, its answer would come after the client had given up.

TCP (RFC 7766): a client may send several queries on one connection without waiting;
each is answered as soon as it can be, so answers may come out of order (IDs tell them
apart). A connection with no query outstanding is closed after ``tcp_idle`` seconds
without one; at most ``max_tcp`` connections at a time, later ones are closed at once.

Nothing a client sends stops the server: a message that cannot be read gets FORMERR
(when its header can be read) or nothing; a ``who`` that raises (a bug in the node) is
logged and the query answered SERVFAIL; any other error while handling one query is
logged and that query dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import socket
from collections.abc import Callable, Iterable, Sequence

import dns.message
import dns.rcode

from shoal.network.dns.cache import DEFAULT_SIZE as DEFAULT_CACHE_SIZE
from shoal.network.dns.cache import AnswerCache
from shoal.network.dns.forwarder import FORWARD_BUDGET, UPSTREAM_TIMEOUT, Forwarder
from shoal.network.dns.records import NetworkRecords
from shoal.network.dns.resolver import (
    CLASSIC_UDP,
    MAX_TCP,
    Answer,
    decide,
    encode,
    failure,
    parse_query,
    udp_limit,
)
from shoal.network.dns.upstream import Upstream, parse_upstreams, system_upstreams

log = logging.getLogger(__name__)

Who = Callable[[str], Sequence[NetworkRecords] | None]
Reply = Callable[[bytes], None]

UDP_BATCH = 64
MAX_FORWARDS = 256
MAX_TCP_CONNECTIONS = 128
TCP_IDLE = 10.0
# Answers a TCP client has not read yet, beyond which it is cut off: DNS answers are small,
# so a client this far behind has stopped reading, and would otherwise hold our memory.
MAX_TCP_BACKLOG = 256 * 1024


class DnsServer:
    """The node's resolver for its tasks (see above). ``start``, then ``add`` and
    ``remove`` sockets as network sandboxes come and go; ``stop`` closes everything."""

    def __init__(
        self,
        who: Who,
        sockets: Iterable[socket.socket] = (),
        upstreams: Iterable[str | Upstream] | None = None,
        *,
        timeout: float = UPSTREAM_TIMEOUT,
        budget: float = FORWARD_BUDGET,
        max_forwards: int = MAX_FORWARDS,
        max_tcp: int = MAX_TCP_CONNECTIONS,
        tcp_idle: float = TCP_IDLE,
        rng: random.Random | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        """``upstreams``: ``ip`` or ``ip:port`` each; None, the node's /etc/resolv.conf
        (read by ``start``). ``cache_size``: answers kept rendered (cache.py); 0, none."""
        self._who = who
        self._initial = list(sockets)
        self._upstreams = parse_upstreams(upstreams) if upstreams is not None else None
        self._timeout = timeout
        self._budget = budget
        self._forwarder = Forwarder((), timeout, budget)
        self._max_forwards = max_forwards
        self._max_tcp = max_tcp
        self._tcp_idle = tcp_idle
        # Shuffling answers needs no cryptographic randomness, only spread.
        self._rng = rng or random.Random()
        self._cache = AnswerCache(cache_size)
        self._udp: dict[socket.socket, _UdpListener] = {}
        self._tcp: dict[socket.socket, asyncio.Server] = {}
        self._connections: set[_TcpConnection] = set()
        self._forwards: set[asyncio.Task[None]] = set()
        self._started = False

    @property
    def upstreams(self) -> tuple[Upstream, ...]:
        return self._forwarder.upstreams

    @property
    def sockets(self) -> list[socket.socket]:
        return [*self._udp, *self._tcp]

    @property
    def cache(self) -> AnswerCache:
        return self._cache

    @property
    def forwarding(self) -> int:
        """Forwarded queries waiting on an upstream."""
        return len(self._forwards)

    async def start(self) -> None:
        if self._upstreams is None:
            self._upstreams = await system_upstreams()
        self._forwarder = Forwarder(self._upstreams, self._timeout, self._budget)
        self._started = True
        initial, self._initial = self._initial, []
        try:
            while initial:
                await self.add(initial[0])
                initial.pop(0)
        except BaseException:
            for sock in initial:  # ours too, served or not
                sock.close()
            await self.stop()
            raise

    async def add(self, sock: socket.socket) -> None:
        """Serve on ``sock`` (bound; UDP or TCP; TCP not yet listening is fine): the server
        owns it from now on."""
        if not self._started:
            raise RuntimeError("DnsServer.add before start")
        sock.setblocking(False)
        if sock.type == socket.SOCK_DGRAM:
            self._udp[sock] = _UdpListener(self, sock)
        elif sock.type == socket.SOCK_STREAM:
            self._tcp[sock] = await asyncio.start_server(
                lambda r, w: self._tcp_client(sock, r, w), sock=sock
            )
        else:
            raise ValueError(f"cannot serve DNS on a socket of type {sock.type!r}")

    async def remove(self, sock: socket.socket) -> None:
        """Stop serving on ``sock`` and close it. Queries already forwarded from it are
        left to finish; their answers have nowhere to go and are dropped."""
        listener = self._udp.pop(sock, None)
        if listener is not None:
            listener.close()
            return
        server = self._tcp.pop(sock, None)
        if server is not None:
            server.close()
            for conn in [c for c in self._connections if c.listener is sock]:
                conn.close()
            await server.wait_closed()

    async def stop(self) -> None:
        """Close every socket and connection, and drop queries still forwarded."""
        for sock in list(self._udp) + list(self._tcp):
            await self.remove(sock)
        for task in list(self._forwards):
            task.cancel()
        await asyncio.gather(*self._forwards, return_exceptions=True)
        self._started = False

    def handle(
        self, wire: bytes, source: str, reply: Reply, tcp: bool
    ) -> asyncio.Task[None] | None:
        """One message from ``source``. ``reply`` sends the answer: at once, or when an
        upstream has answered, from the Task returned."""
        unknowable = False  # who() failed, a bug: SERVFAIL, not REFUSED ("not ours")
        try:
            networks = self._who(source)
        except Exception:
            log.exception("who is %s?", source)
            networks, unknowable = None, True
        if networks is not None:
            cached = self._cache.get(wire, tcp, networks, self._rng)
            if cached is not None:
                reply(cached)
                return None
        parsed = parse_query(wire)
        if parsed is None:
            return None
        if isinstance(parsed, Answer):
            log.debug("unreadable query from %s", source)
            reply(encode(parsed.message, MAX_TCP if tcp else CLASSIC_UDP))
            return None
        query = parsed
        limit = MAX_TCP if tcp else udp_limit(query)
        if unknowable:
            reply(encode(failure(query, dns.rcode.SERVFAIL).message, limit))
            return None
        decision = decide(query, networks, self._rng)
        if isinstance(decision, Answer):
            rendered = encode(decision.message, limit)
            if networks is not None:
                self._cache.put(wire, tcp, networks, decision.message, limit, rendered)
            reply(rendered)
            return None
        if len(self._forwards) >= self._max_forwards:
            log.debug("%d queries forwarded already: SERVFAIL", len(self._forwards))
            reply(encode(failure(query, dns.rcode.SERVFAIL).message, limit))
            return None
        task = asyncio.get_running_loop().create_task(self._forward(query, wire, tcp, limit, reply))
        self._forwards.add(task)
        task.add_done_callback(self._forwards.discard)
        return task

    async def _forward(
        self, query: dns.message.Message, wire: bytes, tcp: bool, limit: int, reply: Reply
    ) -> None:
        try:
            answer = await self._forwarder.forward(query, wire, tcp, limit)
        except Exception:
            log.exception("forwarding a query")
            answer = encode(failure(query, dns.rcode.SERVFAIL).message, limit)
        reply(answer)

    async def _tcp_client(
        self, listener: socket.socket, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if len(self._connections) >= self._max_tcp:
            writer.transport.abort()
            return
        conn = _TcpConnection(self, listener, reader, writer)
        self._connections.add(conn)
        try:
            await conn.serve()
        finally:
            self._connections.discard(conn)
            conn.close()


class _UdpListener:
    __slots__ = ("fd", "loop", "server", "sock")

    def __init__(self, server: DnsServer, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.fd = sock.fileno()
        self.loop = asyncio.get_running_loop()
        self.loop.add_reader(self.fd, self.readable)

    def readable(self) -> None:
        for _ in range(UDP_BATCH):
            try:
                wire, addr = self.sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # an ICMP error for an earlier reply, say
                log.debug("dns udp: %s", e)
                return
            try:
                self.server.handle(wire, addr[0], functools.partial(self._reply, addr), False)
            except Exception:
                log.exception("dns: query from %s", addr[0])

    def _reply(self, addr: tuple[str, int], data: bytes) -> None:
        self.send(data, addr)

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            self.sock.sendto(data, addr)
        except OSError as e:  # full socket buffer, or closed meanwhile: the client retries
            log.debug("dns udp reply to %s: %s", addr[0], e)

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            self.loop.remove_reader(self.fd)
            self.sock.close()


class _TcpConnection:
    def __init__(
        self,
        server: DnsServer,
        listener: socket.socket,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.dns = server
        self.listener = listener
        self.reader = reader
        self.writer = writer
        self.source = str(writer.get_extra_info("peername")[0])
        self.pending: set[asyncio.Task[None]] = set()  # its queries waiting on an upstream

    async def serve(self) -> None:
        with contextlib.suppress(ConnectionError, TimeoutError):
            try:
                await self._read_queries()
            except asyncio.IncompleteReadError as e:
                if e.partial:
                    return  # cut off in the middle of a message
            # The client has sent all it will (it may shut down its sending side right
            # after its query): its answers still go back.
            if self.pending:
                await asyncio.wait(self.pending)

    async def _read_queries(self) -> None:
        idle = self.dns._tcp_idle
        while True:
            try:
                # A cancelled readexactly consumes nothing: what arrived stays buffered.
                async with asyncio.timeout(idle):
                    head = await self.reader.readexactly(2)
            except TimeoutError:
                if self.pending:
                    continue
                return
            async with asyncio.timeout(idle):
                wire = await self.reader.readexactly(int.from_bytes(head, "big"))
            task = self.dns.handle(wire, self.source, self.send, True)
            if task is not None:
                self.pending.add(task)
                task.add_done_callback(self.pending.discard)

    def send(self, data: bytes) -> None:
        transport = self.writer.transport
        if transport.is_closing():
            return
        if transport.get_write_buffer_size() > MAX_TCP_BACKLOG:
            log.debug("dns tcp client %s does not read its answers: cut off", self.source)
            transport.abort()
            return
        transport.write(len(data).to_bytes(2, "big") + data)

    def close(self) -> None:
        """Close the connection; the answers it still waits for have nowhere to go."""
        for task in self.pending:
            task.cancel()
        self.writer.close()
