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

A response without an end (101 Switching Protocols, or a raw stream without length: attach,
exec) turns the connection into a tunnel both ways until the upstream closes it; the client
ending its input first (half-close, or a TLS close_notify) ends only the upstream's input, as
with Go's server."""

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable

from shoal.engineapi.api_versions import maximum, refusal, requested
from shoal.engineapi.engine_proxy import EngineProxy
from shoal.engineapi.http_framing import Body, Head, Malformed
from shoal.engineapi.tls_half_close import keep_tls_half_open

log = logging.getLogger(__name__)

CHUNK = 1 << 18
HEAD_LIMIT = 1 << 16
# How often a response that is taking its time (logs -f, stats, events) checks whether its
# client has gone, so that the upstream's stream ends with it.
HANGUP_POLL = 0.5
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
    )
)


class _Side:
    """One end of a connection, read with what was read beyond a message kept for the next."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.pending = b""

    @property
    def usable(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()

    async def read(self) -> bytes:
        if self.pending:
            data, self.pending = self.pending, b""
            return data
        return await self.reader.read(CHUNK)

    async def read_head(self) -> tuple[Head, bytes] | None:
        """The next message's head and the bytes after it; None at the end of input."""
        data, self.pending = self.pending, b""
        start = 0
        while (end := data.find(b"\r\n\r\n", start)) < 0:
            if len(data) > HEAD_LIMIT:
                raise Malformed(data[:100])
            start = max(0, len(data) - 3)
            more = await self.reader.read(CHUNK)
            if not more:
                if data:
                    raise ConnectionError("connection closed within a head")
                return None
            data += more
        return Head.parse(data[: end + 4]), data[end + 4 :]

    def close(self) -> None:
        self.writer.close()


async def _relay(
    src: _Side, dst: _Side, body: Body, first: bytes, prefix: bytes, watch: _Side | None = None
) -> None:
    """``prefix`` (a head), then the body from ``first`` on, to ``dst``: written at once as
    far as it has come, so that a small message goes out in one piece. With ``watch`` (the
    client of a response), a body that keeps the client waiting (logs -f) ends when the
    client hangs up, and the upstream's connection with it."""
    data = first
    out = prefix
    while True:
        if data:
            used = body.feed(data)
            if used < len(data):
                src.pending = data[used:] + src.pending
                data = data[:used]
            out = out + data if out else data
        if out:
            dst.writer.write(out)
            out = b""
        if body.done:
            return
        await dst.writer.drain()
        data = await (src.read() if watch is None else _read_unless_hangup(src, watch))
        if not data:
            raise ConnectionError("connection closed within a message")


async def _read_unless_hangup(src: _Side, client: _Side) -> bytes:
    if src.pending:
        return await src.read()
    read = asyncio.ensure_future(src.reader.read(CHUNK))
    try:
        while True:
            done, _ = await asyncio.wait({read}, timeout=HANGUP_POLL)
            if done:
                return read.result()
            if client.reader.at_eof() or client.writer.is_closing():
                src.close()
                raise ConnectionError("the client hung up")
    finally:
        if not read.done():
            read.cancel()
            with contextlib.suppress(BaseException):
                await read


class Front:
    def __init__(self, app_server: Callable[[], asyncio.Protocol], proxy: EngineProxy) -> None:
        """``app_server``: the aiohttp server (protocol factory) of shoal's application."""
        self._app_server = app_server
        self._proxy = proxy
        self._connections: set[asyncio.Task] = set()

    async def close(self) -> None:
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    # --- choosing where a request goes ------------------------------------------------------

    def _for_shoal(self, target: str) -> bool:
        if self._proxy.address is None:
            return True
        path = target.split("?", 1)[0]
        version = requested(path)
        if version is not None:
            if refusal(version, maximum(self._proxy)) is not None:
                return True  # shoal says why
            path = path[len(version) + 2 :]
        return path.lstrip("/").split("/", 1)[0] in SHOAL_PATHS

    async def _upstream(self, kind: str, upstreams: dict[str, _Side]) -> tuple[str, _Side]:
        """The connection for ``kind`` ("engine" or "shoal"), opened if need be; shoal's
        where the engine cannot be reached (its application then says so)."""
        current = upstreams.get(kind)
        if current is not None and current.usable:
            return kind, current
        if current is not None:
            current.close()
            del upstreams[kind]
        if kind == "engine":
            address = self._proxy.address
            assert address is not None
            try:
                reader, writer = await address.open()
            except OSError:
                return await self._upstream("shoal", upstreams)
        else:
            ours, theirs = socket.socketpair()
            await asyncio.get_running_loop().connect_accepted_socket(self._app_server, theirs)
            reader, writer = await asyncio.open_connection(sock=ours, limit=CHUNK)
        upstreams[kind] = _Side(reader, writer)
        return kind, upstreams[kind]

    # --- a client connection ----------------------------------------------------------------

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        upstreams: dict[str, _Side] = {}
        try:
            await self._serve(_Side(reader, writer), upstreams)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        except Malformed as err:
            log.debug("malformed HTTP from a client or upstream: %r", err)
        finally:
            self._connections.discard(task)
            for upstream in upstreams.values():
                upstream.close()
            writer.close()

    async def _serve(self, client: _Side, upstreams: dict[str, _Side]) -> None:
        while True:
            read = await client.read_head()
            if read is None:
                return  # the client is done
            request, rest = read
            method, target = request.first[0], request.first[1]
            wanted = "shoal" if self._for_shoal(target) else "engine"
            kind, upstream = await self._upstream(wanted, upstreams)
            body = request.body_framing()
            assert body is not None
            await _relay(client, upstream, body, rest, request.raw)
            await upstream.writer.drain()

            read = await upstream.read_head()
            if read is None:
                raise ConnectionError("the upstream closed without an answer")
            response, rest = read
            head = self._response_head(response, kind)
            framing = response.body_framing(method)
            if framing is None or response.status == 101:
                # No end but the connection's: a tunnel (attach, exec), or a body up to the
                # close.
                client.writer.write(head + rest)
                await self._tunnel(client, upstream)
                return
            await _relay(upstream, client, framing, rest, head, watch=client)
            await client.writer.drain()
            if response.close:
                upstream.close()
                del upstreams[kind]
            if request.close:
                return

    def _response_head(self, response: Head, kind: str) -> bytes:
        """The engine's head as it is, but for the API version this node speaks (where the
        engine's is newer than shoal's)."""
        if kind != "engine":
            return response.raw
        engine = self._proxy.ping_headers.get("Api-Version")
        if engine is None or engine == (newest := maximum(self._proxy)):
            return response.raw
        lines = response.raw[:-4].split(b"\r\n")
        for i, line in enumerate(lines):
            if line.lower().startswith(b"api-version:"):
                lines[i] = b"Api-Version: " + newest.encode()
        return b"\r\n".join(lines) + b"\r\n\r\n"

    async def _tunnel(self, client: _Side, upstream: _Side) -> None:
        restore = keep_tls_half_open(client.writer.transport, client.reader.feed_eof)

        async def inbound() -> None:
            while data := await client.read():
                upstream.writer.write(data)
                await upstream.writer.drain()
            # The client is done sending: so is the upstream's input; its output goes on.
            if upstream.writer.can_write_eof():
                with contextlib.suppress(OSError):
                    upstream.writer.write_eof()

        async def outbound() -> None:
            while data := await upstream.read():
                client.writer.write(data)
                await client.writer.drain()

        sending = asyncio.ensure_future(inbound())
        try:
            await outbound()
        finally:
            sending.cancel()
            with contextlib.suppress(BaseException):
                await sending
            restore()
            upstream.close()
