"""Hijacked requests through to the engine: ``POST /containers/{id}/attach`` and
``POST /exec/{id}/start`` (and anything else that asks to upgrade its connection) end HTTP on
the connection and carry a container's stdin, stdout and stderr both ways, raw.

Docker's clients ask with ``Connection: Upgrade`` and ``Upgrade: tcp`` and get ``101
UPGRADED``; older ones ask without and get ``200 OK`` with a raw-stream content type and no
length. Either way the engine's answer head goes to the client as it is, and from then on the
bytes are copied both ways, on a connection of the engine's own. A client that is done
sending (``docker exec -i`` at the end of its input) half-closes its side: the engine's side
is half-closed too and the output keeps flowing until the engine closes (the process ended).
An engine that refuses (no such container: 404) is answered as any other request."""

import asyncio
import contextlib
import re

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter

from shoal.engineapi.engine_proxy import EngineProxy, forwarded_headers
from shoal.engineapi.tls_half_close import keep_tls_half_open

# The requests that Docker's daemon answers by hijacking, in the form without Upgrade.
_HIJACKING = re.compile(r"^(/v[0-9.]+)?/(containers/[^/]+/attach|exec/[^/]+/start)$")
_STREAM_TYPES = ("application/vnd.docker.raw-stream", "application/vnd.docker.multiplexed-stream")
# Pause reading a side while this much of its data waits to be sent to the other.
HIGH_WATER = 1 << 20
HEAD_LIMIT = 64 * 1024


def is_hijack(request: web.Request) -> bool:
    if "upgrade" in request.headers.get("Connection", "").lower():
        return True
    return request.method == "POST" and _HIJACKING.match(request.path) is not None


class _Hijacked(web.StreamResponse):
    """What the handler returns once the connection was taken over: aiohttp writes nothing
    more on it (the engine's head went out raw) and closes it."""

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        return None


def _parse_head(head: bytes) -> tuple[int, str, list[tuple[str, str]]]:
    lines = head.decode("latin-1").split("\r\n")
    _version, status, *reason = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        key, _, value = line.partition(":")
        headers.append((key.strip(), value.strip()))
    return int(status), (reason[0] if reason else ""), headers


def _request_head(request: web.Request) -> bytes:
    lines = [f"{request.method} {request.raw_path} HTTP/1.1"]
    lines += [f"{k.decode('latin-1')}: {v.decode('latin-1')}" for k, v in request.raw_headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def hijack(proxy: EngineProxy, request: web.Request) -> web.StreamResponse:
    address = proxy.address
    if address is None:
        raise proxy.unavailable()
    try:
        reader, writer = await address.open()
    except OSError as err:
        raise proxy.unavailable(err) from None
    try:
        # The request as it came, then its body; what the client sent beyond it, if anything,
        # aiohttp keeps as the upgraded connection's tail.
        writer.write(_request_head(request))
        if request.body_exists:
            writer.write(await request.read())
        protocol = request.protocol
        tail = getattr(protocol, "_message_tail", b"")
        if tail:
            writer.write(tail)
            protocol._message_tail = b""
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as err:
        writer.close()
        raise proxy.unavailable(err) from None

    status, reason, headers = _parse_head(head)
    names = {k.lower(): v for k, v in headers}
    streams = status == 101 or (
        status == 200
        and names.get("content-type", "") in _STREAM_TYPES
        and "content-length" not in names
        and "transfer-encoding" not in names
    )
    if not streams:
        try:
            return await _plain_answer(request, reader, status, reason, headers)
        finally:
            writer.close()
    transport = request.transport
    if transport is None or transport.is_closing():
        writer.close()
        return _Hijacked()
    transport.write(head)
    bridge = _Bridge(transport, protocol, writer)
    try:
        await bridge.run(reader)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    bridge.give_back()
    response = _Hijacked()
    response.force_close()
    return response


async def _plain_answer(
    request: web.Request,
    reader: asyncio.StreamReader,
    status: int,
    reason: str,
    headers: list[tuple[str, str]],
) -> web.Response:
    """The engine did not hijack (an error, or exec start with Detach): its answer as it is."""
    names = {k.lower(): v for k, v in headers}
    if "content-length" in names:
        body = await reader.readexactly(int(names["content-length"]))
    elif names.get("transfer-encoding", "").lower() == "chunked":
        body = await _dechunk(reader)
    elif status in (204, 304) or 100 <= status < 200:
        body = b""
    else:
        body = await reader.read()
    out = web.Response(status=status, reason=reason, body=body)
    for key, value in forwarded_headers(dict(headers)):
        if key.lower() != "content-length":
            out.headers.add(key, value)
    return out


async def _dechunk(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


class _Bridge(asyncio.Protocol):
    """Stands in for aiohttp's protocol on the client's connection while it is hijacked: what
    the client sends goes to the engine, and the engine's output is written back."""

    def __init__(
        self,
        client: asyncio.Transport,
        original: asyncio.BaseProtocol,
        engine: asyncio.StreamWriter,
    ) -> None:
        self._client = client
        self._original = original
        self._engine = engine
        self._lost = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self._draining: asyncio.Task | None = None
        client.set_protocol(self)
        if not client.is_reading():
            client.resume_reading()
        self._restore_tls = keep_tls_half_open(client, self.eof_received)
        self._tls = getattr(client, "_ssl_protocol", None) is not None

    # --- the client's side ------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._engine.is_closing():
            return
        self._engine.write(data)
        if self._engine.transport.get_write_buffer_size() > HIGH_WATER and self._draining is None:
            self._client.pause_reading()
            self._draining = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        with contextlib.suppress(ConnectionError):
            await self._engine.drain()
        self._draining = None
        if not self._lost.is_set():
            self._client.resume_reading()

    def eof_received(self) -> bool | None:
        # The client is done sending: so is the engine's connection; the output goes on.
        if self._engine.can_write_eof() and not self._engine.is_closing():
            with contextlib.suppress(OSError):
                self._engine.write_eof()
        # (Over TLS the connection is kept open by _keep_tls_half_open instead.)
        return True if not self._tls else None

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost.set()
        self._writable.set()
        # aiohttp learns it too (it counts its connections).
        self._original.connection_lost(exc)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # --- the engine's side ------------------------------------------------------------------

    async def run(self, engine: asyncio.StreamReader) -> None:
        """Copy the engine's output to the client until either side ends."""
        while not self._lost.is_set():
            read = asyncio.ensure_future(engine.read(1 << 16))
            lost = asyncio.ensure_future(self._lost.wait())
            await asyncio.wait({read, lost}, return_when=asyncio.FIRST_COMPLETED)
            lost.cancel()
            if not read.done():
                read.cancel()
                with contextlib.suppress(BaseException):
                    await read
                return
            try:
                data = read.result()
            except (OSError, asyncio.IncompleteReadError):
                return
            if not data:
                return
            self._client.write(data)
            if not self._writable.is_set():
                await self._writable.wait()

    def give_back(self) -> None:
        """The connection back to aiohttp, which closes it (after what is written is sent)."""
        if self._draining is not None:
            self._draining.cancel()
        self._restore_tls()
        if self._lost.is_set():
            return
        self._client.set_protocol(self._original)
        force_close = getattr(self._original, "force_close", None)
        if force_close is not None:
            force_close()
