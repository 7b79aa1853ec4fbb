"""Backends and clients for the routing-mesh tests (loopback and namespaces)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable


def free_port(host: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


async def eventually(cond: Callable[[], bool], what: str, tries: int = 500) -> None:
    """Wait for a condition the event loop will make true; a bounded number of short
    yields, not a timing assertion."""
    for _ in range(tries):
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


class Backend:
    """A TCP server that answers each connection by running ``handler``; tracks its
    connections so a test can kill them."""

    def __init__(self, name: str, handler, host: str = "127.0.0.1") -> None:
        self.name = name
        self.host = host
        self.handler = handler
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.accepted = 0

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.sockets[0].getsockname()[1]

    async def start(self, port: int = 0) -> Backend:
        async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            self.accepted += 1
            self.writers.add(w)
            try:
                await self.handler(self, r, w)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                self.writers.discard(w)
                w.close()

        self.server = await asyncio.start_server(on_conn, self.host, port, reuse_address=True)
        return self

    async def stop(self, kill_connections: bool = True) -> None:
        if self.server is not None:
            self.server.close()
            if kill_connections:
                for w in list(self.writers):
                    w.transport.abort()
            await self.server.wait_closed()


async def echo(_b: Backend, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    while data := await r.read(65536):
        w.write(data)
        await w.drain()
    if w.can_write_eof():
        w.write_eof()


async def name_then_echo(b: Backend, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    """Says its name, then echoes: lets a client see which backend it reached."""
    w.write(b.name.encode() + b"\n")
    await w.drain()
    await echo(b, r, w)


async def whoami(host: str, port: int) -> str:
    r, w = await asyncio.open_connection(host, port)
    try:
        return (await r.readline()).decode().strip()
    finally:
        w.close()


class UdpEcho(asyncio.DatagramProtocol):
    """Answers each datagram with ``name:data``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.transport: asyncio.DatagramTransport | None = None
        self.peers: set[tuple[str, int]] = set()

    def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:  # type: ignore[no-untyped-def]
        self.peers.add(addr)
        self.transport.sendto(self.name.encode() + b":" + data, addr)  # type: ignore[union-attr]

    @property
    def port(self) -> int:
        return self.transport.get_extra_info("sockname")[1]  # type: ignore[union-attr]


class UdpClient(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:  # type: ignore[no-untyped-def]
        self.queue.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        pass

    async def ask(self, data: bytes, wait: float = 5.0) -> bytes:
        self.transport.sendto(data)  # type: ignore[union-attr]
        async with asyncio.timeout(wait):
            return await self.queue.get()


async def udp_client(host: str, port: int) -> UdpClient:
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_datagram_endpoint(UdpClient, remote_addr=(host, port))
    return proto
