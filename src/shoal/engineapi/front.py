"""The front of the API: every client connection (unix socket, TCP, TLS) arrives here, and
each request on it goes either to the node's engine or to shoal's own application, as bytes.

Most of what a Docker client asks of a node is the engine's (`docker ps`, `exec`, `logs`,
`pull`), and shoal has nothing to add to it; going through a full HTTP server and client for
each such request would cost more than the engine itself takes to answer. So this front reads
only what it must of each request and response (the request line, and the headers that say
where a message ends) and copies the bytes, unchanged, on a connection to the engine of the
client connection's own. What is the swarm's, or the node's as a whole (/_ping, /version,
/info, networks, events), or anything refused (an API version out of range) goes to shoal's
aiohttp application, over a socket pair of the connection's own, the same way.

On a node that serves its API from a thread of its own (``engineapi.api_thread``), the front
runs there, and so does a second application answering the reads of the swarm's state
(``engineapi.read_lane``): those requests never wait for the node's own event loop. The
socket pair to shoal's main application is then handed to that loop, which takes it up when it
next turns; the request waits in the socket's buffer meanwhile.

It is written as asyncio protocols, bytes passed on from the callbacks that receive them (no
task or future per request): what makes it cheap enough. A response without an end (101
Switching Protocols, or a raw stream without length: attach, exec) turns the connection into
a tunnel both ways until the upstream closes it; the client ending its input first
(half-close, or a TLS close_notify) ends only the upstream's input, as with Go's server. A
client that hangs up during a response (logs -f) ends the upstream's connection with it."""

import asyncio
import concurrent.futures
import contextlib
import logging
import socket
from collections.abc import Callable
from typing import Any

from shoal.engineapi.api_versions import maximum, refusal, requested
from shoal.engineapi.engine_proxy import EngineProxy
from shoal.engineapi.http_framing import Body, Head, Malformed
from shoal.engineapi.read_lane import ReadLane
from shoal.engineapi.tls_half_close import keep_tls_half_open

log = logging.getLogger(__name__)

HEAD_LIMIT = 1 << 16
# Write buffers: large enough that a stream (cp, export, pull) rarely stops its sender.
WRITE_HIGH_WATER = 64 << 10
SEND_BUFFER = 1 << 20
# Stop reading a client whose next request waits while this much of it is held.
HOLD_LIMIT = 1 << 20
# The first path segment (after any /vX.Y) of what shoal answers itself.
SHOAL_PATHS = frozenset(
    (
        "_ping",
        "version",
        "info",
        "events",
        "swarm",
        "nodes",
        "services",
        "tasks",
        "secrets",
        "configs",
        "networks",
        "shoal",  # shoal's own endpoints (/shoal/plan: --dry-run)
    )
)
ENGINE, SHOAL, READ = "engine", "shoal", "read"


class Front:
    def __init__(
        self,
        app_server: Callable[[], asyncio.Protocol],
        proxy: EngineProxy,
        app_loop: asyncio.AbstractEventLoop | None = None,
        reads: ReadLane | None = None,
    ) -> None:
        """``app_server``: the aiohttp server (protocol factory) of shoal's application, run
        by ``app_loop`` (the front's own loop if None); ``reads``: the requests answered by
        another application, on the front's loop, and its server."""
        self.app_server = app_server
        self.app_loop = app_loop
        self.proxy = proxy
        self.reads = reads
        self.connections: set[_Client] = set()

    def protocol(self) -> asyncio.Protocol:
        """A protocol for a new client connection (the servers' protocol factory)."""
        return _Client(self)

    async def close(self) -> None:
        for client in list(self.connections):
            client.abort()

    def kind_of(self, method: str, target: str) -> str:
        """Who answers a request: the engine, shoal's application, or its read lane."""
        path = target.split("?", 1)[0]
        version = requested(path)
        if version is not None:
            if refusal(version, maximum(self.proxy)) is not None:
                return SHOAL  # shoal says why
            path = path[len(version) + 2 :]
        if self.reads is not None and self.reads.answers(method, path):
            return READ
        if self.proxy.address is None:
            return SHOAL
        return SHOAL if path.lstrip("/").split("/", 1)[0] in SHOAL_PATHS else ENGINE

    def response_head(self, head: Head, kind: str) -> bytes:
        """The engine's head as it is, but for the API version this node speaks (where the
        engine's is newer than shoal's)."""
        if kind != ENGINE:
            return head.raw
        engine = self.proxy.ping_headers.get("Api-Version")
        if engine is None or engine == (newest := maximum(self.proxy)):
            return head.raw
        lines = head.raw[:-4].split(b"\r\n")
        for i, line in enumerate(lines):
            if line.lower().startswith(b"api-version:"):
                lines[i] = b"Api-Version: " + newest.encode()
        return b"\r\n".join(lines) + b"\r\n\r\n"


class _Upstream(asyncio.Protocol):
    """The connection to the engine or to shoal's application, for one client connection."""

    def __init__(self, client: "_Client", kind: str) -> None:
        self.client = client
        self.kind = kind
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.buffer = b""
        self.body: Body | None = None  # while a response's body comes
        self.tunnel = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        try:
            self.client.from_upstream(self, data)
        except Malformed as err:
            log.debug("malformed HTTP from the %s: %r", self.kind, err)
            self.client.abort()

    def eof_received(self) -> bool:
        self.closed = True
        self.client.upstream_ended(self)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self.closed = True
            self.client.upstream_ended(self)

    def pause_writing(self) -> None:
        self.client.pause("upstream full")

    def resume_writing(self) -> None:
        self.client.resume("upstream full")

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class _Client(asyncio.Protocol):
    """One client connection: requests read one at a time, each passed to its upstream, its
    response passed back, then the next."""

    def __init__(self, front: Front) -> None:
        self.front = front
        self.transport: asyncio.Transport | None = None
        self.upstreams: dict[str, _Upstream] = {}
        self.buffer = b""  # of the client, not yet passed on
        self.current: _Upstream | None = None  # the request's upstream, until it is answered
        self.method = ""
        self.close_after = False
        self.body: Body | None = None  # while the request's body comes
        self.tunnel = False
        self.eof = False
        self._paused: set[str] = set()
        self._restore_tls: Callable[[], None] = lambda: None
        self._connecting: asyncio.Task | None = None

    # --- the client's connection ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Room for a stream in the kernel: fewer trips through the event loop per MiB.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        self.front.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.front.connections.discard(self)
        self._restore_tls()
        if self._connecting is not None:
            self._connecting.cancel()
        for upstream in self.upstreams.values():
            upstream.close()
        self.upstreams.clear()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def pause(self, reason: str) -> None:
        if not self._paused and self.transport is not None:
            with contextlib.suppress(RuntimeError):
                self.transport.pause_reading()
        self._paused.add(reason)

    def resume(self, reason: str) -> None:
        self._paused.discard(reason)
        if not self._paused and self.transport is not None and not self.transport.is_closing():
            with contextlib.suppress(RuntimeError):
                self.transport.resume_reading()

    def pause_writing(self) -> None:
        if self.current is not None and self.current.transport is not None:
            with contextlib.suppress(RuntimeError):
                self.current.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.current is not None and self.current.transport is not None:
            with contextlib.suppress(RuntimeError):
                self.current.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.tunnel:
            assert self.current is not None
            self.current.write(data)
            return
        if self.body is not None:
            assert self.current is not None
            used = self.body.feed(data)
            self.current.write(data[:used] if used < len(data) else data)
            if not self.body.done:
                return
            self.body = None
            data = data[used:]
            if not data:
                return
        self.buffer += data
        try:
            self._next_request()
        except Malformed as err:
            log.debug("malformed HTTP from a client: %r", err)
            self.abort()

    def eof_received(self) -> bool:
        self.eof = True
        if self.tunnel:
            # The client is done sending: so is the upstream's input; its output goes on.
            upstream = self.current
            if upstream is not None and upstream.transport is not None:
                if upstream.transport.can_write_eof() and not upstream.closed:
                    with contextlib.suppress(OSError):
                        upstream.transport.write_eof()
            # (Over TLS, keep_tls_half_open keeps the connection open instead.)
            return self.transport is None or self.transport.get_extra_info("sslcontext") is None
        if self.current is not None and self.body is None and not self.buffer:
            # Gone while its answer comes (logs -f): the upstream's stream ends with it.
            self.current.close()
            self.current = None
        return False

    # --- requests ---------------------------------------------------------------------------

    def _next_request(self) -> None:
        if self.current is not None or self._connecting is not None:
            # One request at a time: the next waits for this one's answer.
            if len(self.buffer) > HOLD_LIMIT:
                self.pause("held")
            return
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > HEAD_LIMIT:
                raise Malformed(self.buffer[:100])
            return
        head = Head.parse(self.buffer[: end + 4])
        self.buffer = self.buffer[end + 4 :]
        kind = self.front.kind_of(head.first[0], head.first[1])
        upstream = self.upstreams.get(kind)
        if upstream is not None and not upstream.closed:
            self._send(head, upstream)
            return
        # A connection to open first: the client waits meanwhile.
        self.pause("connecting")
        self._connecting = asyncio.ensure_future(self._connect_and_send(head, kind))

    async def _connect_and_send(self, head: Head, kind: str) -> None:
        try:
            upstream = await self._open(kind)
        except Exception:
            log.exception("could not open a connection for a request")
            self.abort()
            return
        finally:
            self._connecting = None
        self.resume("connecting")
        if self.transport is None or self.transport.is_closing():
            upstream.close()
            return
        try:
            self._send(head, upstream)
        except Malformed:
            self.abort()

    async def _open(self, kind: str) -> _Upstream:
        """A connection to ``kind``; shoal's where the engine cannot be reached (its
        application then says so)."""
        loop = asyncio.get_running_loop()
        old = self.upstreams.pop(kind, None)
        if old is not None:
            old.close()
        if kind == ENGINE:
            address = self.front.proxy.address
            assert address is not None
            upstream = _Upstream(self, ENGINE)
            try:
                if address.unix_path is not None:
                    await loop.create_unix_connection(lambda: upstream, address.unix_path)
                else:
                    await loop.create_connection(lambda: upstream, address.host, address.port)
            except OSError:
                return await self._open(SHOAL)
        else:
            ours, theirs = socket.socketpair()
            app_loop = self.front.app_loop
            if kind == READ:
                assert self.front.reads is not None
                await loop.connect_accepted_socket(self.front.reads.server, theirs)
            elif app_loop is None or app_loop is loop:
                await loop.connect_accepted_socket(self.front.app_server, theirs)
            else:
                # Not waited for: what is written meanwhile waits in the socket's buffer.
                _serve_on(app_loop, self.front.app_server, theirs)
            upstream = _Upstream(self, kind)
            await loop.create_unix_connection(lambda: upstream, sock=ours)
        self.upstreams[upstream.kind] = upstream
        return upstream

    def _send(self, head: Head, upstream: _Upstream) -> None:
        self.current = upstream
        self.method = head.first[0]
        self.close_after = head.close
        upstream.body = None
        upstream.buffer = b""
        body = head.body_framing()
        assert body is not None
        rest, self.buffer = self.buffer, b""
        used = body.feed(rest)
        upstream.write(head.raw + rest[:used])
        self.buffer = rest[used:]
        if not body.done:
            self.body = body
        elif self.buffer:
            self.pause("held")  # beyond this request: waits for its answer

    # --- responses --------------------------------------------------------------------------

    def from_upstream(self, upstream: _Upstream, data: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            upstream.close()
            return
        if upstream.tunnel:
            transport.write(data)
            return
        if upstream is not self.current:
            upstream.close()  # nothing was asked of it
            return
        if upstream.body is not None:
            used = upstream.body.feed(data)
            transport.write(data if used == len(data) else data[:used])
            if upstream.body.done:
                self._answered(upstream)
            return
        upstream.buffer += data
        while upstream.body is None and not upstream.tunnel:
            end = upstream.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(upstream.buffer) > HEAD_LIMIT:
                    raise Malformed(upstream.buffer[:100])
                return
            head = Head.parse(upstream.buffer[: end + 4])
            rest = upstream.buffer[end + 4 :]
            upstream.buffer = b""
            raw = self.front.response_head(head, upstream.kind)
            status = head.status
            if 100 <= status < 200 and status != 101:
                transport.write(raw)  # an interim answer: the final one follows
                upstream.buffer = rest
                continue
            body = head.body_framing(self.method)
            if body is None or status == 101:
                self._start_tunnel(upstream, raw + rest)
                return
            used = body.feed(rest)
            transport.write(raw + rest[:used])
            if head.close:
                self.close_after = True
            if body.done:
                self._answered(upstream)
                return
            upstream.body = body

    def _answered(self, upstream: _Upstream) -> None:
        upstream.body = None
        self.current = None
        if self.close_after or self.eof:
            self._finish()
            return
        self.resume("held")
        if self.buffer:
            try:
                self._next_request()
            except Malformed:
                self.abort()

    def _finish(self) -> None:
        if self.transport is not None:
            self.transport.close()  # after what is written has gone

    def _start_tunnel(self, upstream: _Upstream, first: bytes) -> None:
        assert self.transport is not None
        self.tunnel = upstream.tunnel = True
        self.transport.write(first)
        self._restore_tls = keep_tls_half_open(self.transport, self._tls_eof)
        # Whatever the client sent beyond the request is the tunnel's already.
        if self.buffer:
            upstream.write(self.buffer)
            self.buffer = b""
        self.resume("held")
        if self.eof:
            self.eof_received()

    def _tls_eof(self) -> None:
        self.eof_received()

    def upstream_ended(self, upstream: _Upstream) -> None:
        """The upstream closed: mid-answer or in a tunnel, the client's connection ends too
        (after what was written); between answers, the next request opens another."""
        if self.upstreams.get(upstream.kind) is upstream:
            del self.upstreams[upstream.kind]
        self.resume("upstream full")
        if upstream.tunnel or upstream is self.current:
            if upstream.tunnel:
                self._restore_tls()
                self._restore_tls = lambda: None
            self.current = None
            self._finish()


def _serve_on(
    loop: asyncio.AbstractEventLoop, server: Callable[[], asyncio.Protocol], sock: socket.socket
) -> None:
    """Have ``loop`` (another thread's) serve the connection ``sock`` with ``server``."""

    def failed(done: concurrent.futures.Future[Any]) -> None:
        if not done.cancelled() and done.exception() is not None:
            log.warning("the API could not pass a connection on: %s", done.exception())
            sock.close()

    try:
        future = asyncio.run_coroutine_threadsafe(loop.connect_accepted_socket(server, sock), loop)
    except RuntimeError:  # that loop is closed: the node is stopping
        sock.close()
        return
    future.add_done_callback(failed)
