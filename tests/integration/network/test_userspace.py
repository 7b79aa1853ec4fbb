"""The userspace data path on loopback: the proxy on 127.0.0.2, backends on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from shoal.clock import FakeClock
from shoal.network.datapath import MeshConfig
from shoal.network.routing import Backend as Endpoint
from shoal.network.routing import PortRoute, RoutingTable
from shoal.network.tcp_proxy import TcpProxy
from shoal.network.userspace import UserspaceDataPath
from tests.integration.network.helpers import (
    Backend,
    UdpEcho,
    echo,
    eventually,
    free_port,
    name_then_echo,
    udp_client,
    whoami,
)

NODE = "127.0.0.2"


@pytest.fixture
async def mesh() -> AsyncIterator[UserspaceDataPath]:
    dp = UserspaceDataPath(MeshConfig(addresses=[NODE], connect_timeout=2.0))
    await dp.start()
    yield dp
    await dp.stop()


def tcp_table(port: int, *backends: Backend, service: str = "svc") -> RoutingTable:
    eps = tuple(Endpoint(b.host, b.port) for b in backends)
    return RoutingTable.of([PortRoute("tcp", port, service, eps)])


def tcp_proxy(dp: UserspaceDataPath, port: int) -> TcpProxy:
    p = dp.proxy("tcp", port)
    assert isinstance(p, TcpProxy)
    return p


async def test_successive_connections_reach_every_backend(mesh: UserspaceDataPath) -> None:
    backends = [await Backend(f"b{i}", name_then_echo).start() for i in range(3)]
    port = free_port(NODE)
    await mesh.apply(tcp_table(port, *backends))
    seen = Counter([await whoami(NODE, port) for _ in range(30)])
    assert seen == {"b0": 10, "b1": 10, "b2": 10}
    for b in backends:
        await b.stop()


async def test_many_concurrent_connections_keep_their_bytes(mesh: UserspaceDataPath) -> None:
    backends = [await Backend(f"b{i}", echo).start() for i in range(2)]
    port = free_port(NODE)
    await mesh.apply(tcp_table(port, *backends))

    async def client(i: int) -> bool:
        payload = os.urandom(32 * 1024) + i.to_bytes(4, "big")
        r, w = await asyncio.open_connection(NODE, port)
        w.write(payload)
        w.write_eof()
        got = await r.read(-1)
        w.close()
        return got == payload

    results = await asyncio.gather(*(client(i) for i in range(300)))
    assert all(results)
    assert sum(b.accepted for b in backends) == 300
    await eventually(lambda: not tcp_proxy(mesh, port).connections, "connections closed")
    for b in backends:
        await b.stop()


async def test_half_close_keeps_the_other_direction_open(mesh: UserspaceDataPath) -> None:
    async def answer_after_eof(_b, r, w) -> None:  # type: ignore[no-untyped-def]
        request = await r.read(-1)  # until the client's EOF
        for _ in range(3):
            w.write(b"reply to " + request + b";")
            await w.drain()
            await asyncio.sleep(0)

    backend = await Backend("b", answer_after_eof).start()
    port = free_port(NODE)
    await mesh.apply(tcp_table(port, backend))
    r, w = await asyncio.open_connection(NODE, port)
    w.write(b"question")
    w.write_eof()
    assert await r.read(-1) == b"reply to question;" * 3
    w.close()
    await backend.stop()


async def test_half_close_from_the_backend_side(mesh: UserspaceDataPath) -> None:
    received: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def speak_first_then_listen(_b, r, w) -> None:  # type: ignore[no-untyped-def]
        w.write(b"hello")
        w.write_eof()
        received.set_result(await r.read(-1))

    backend = await Backend("b", speak_first_then_listen).start()
    port = free_port(NODE)
    await mesh.apply(tcp_table(port, backend))
    r, w = await asyncio.open_connection(NODE, port)
    assert await r.read(-1) == b"hello"  # backend's EOF reached us
    w.write(b"still talking")  # our direction is still open
    w.write_eof()
    assert await received == b"still talking"
    w.close()
    await backend.stop()


async def test_backpressure_from_a_slow_reader(mesh: UserspaceDataPath) -> None:
    size = 48 * 1024 * 1024
    writers: list[asyncio.StreamWriter] = []
    sent = asyncio.Event()

    async def firehose(_b, _r, w) -> None:  # type: ignore[no-untyped-def]
        writers.append(w)
        w.write(b"x" * size)
        await w.drain()
        sent.set()
        w.write_eof()

    backend = await Backend("b", firehose).start()
    port = free_port(NODE)
    await mesh.apply(tcp_table(port, backend))
    r, w = await asyncio.open_connection(NODE, port, limit=64 * 1024)
    # The client reads nothing yet. The backend's data must pile up in the backend (its
    # own buffer stays non-empty) rather than in the proxy.
    await eventually(lambda: bool(writers), "backend connected")
    proxy = tcp_proxy(mesh, port)

    def proxy_buffered() -> int:
        return sum(c.buffered for c in proxy.connections)

    for _ in range(20):  # let the loop spin: a proxy without backpressure would fill up
        await asyncio.sleep(0.01)
    assert writers[0].transport.get_write_buffer_size() > 0
    assert not sent.is_set()
    assert proxy_buffered() <= 1024 * 1024
    got = 0
    while chunk := await r.read(1 << 20):
        got += len(chunk)
    assert got == size
    assert sent.is_set()
    w.close()
    await backend.stop()


async def test_refusing_backends_are_skipped(mesh: UserspaceDataPath) -> None:
    live = await Backend("live", name_then_echo).start()
    dead = [Endpoint("127.0.0.1", free_port()) for _ in range(2)]
    port = free_port(NODE)
    table = RoutingTable.of(
        [PortRoute("tcp", port, "svc", (*dead, Endpoint(live.host, live.port)))]
    )
    await mesh.apply(table)
    assert [await whoami(NODE, port) for _ in range(20)] == ["live"] * 20
    await live.stop()


async def test_no_backend_at_all_resets_the_client(mesh: UserspaceDataPath) -> None:
    port = free_port(NODE)
    dead = Endpoint("127.0.0.1", free_port())
    await mesh.apply(RoutingTable.of([PortRoute("tcp", port, "svc", (dead,))]))

    async def connect_and_read(port: int) -> None:
        # The reset may come before the client's own connect has returned.
        r, w = await asyncio.open_connection(NODE, port)
        try:
            await r.read(-1)
        finally:
            w.close()

    with pytest.raises(ConnectionResetError):
        await connect_and_read(port)
    other = free_port(NODE)
    await mesh.apply(RoutingTable.of([PortRoute("tcp", other, "svc", ())]))
    with pytest.raises(ConnectionResetError):
        await connect_and_read(other)
    await eventually(lambda: not tcp_proxy(mesh, other).connections, "connections gone")


async def test_backend_dying_mid_stream_closes_the_client(mesh: UserspaceDataPath) -> None:
    async def die_after_some(_b, _r, w) -> None:  # type: ignore[no-untyped-def]
        w.write(b"partial")
        await w.drain()
        sock = w.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        w.transport.abort()

    backend = await Backend("b", die_after_some).start()
    port = free_port(NODE)
    await mesh.apply(tcp_table(port, backend))
    r, w = await asyncio.open_connection(NODE, port)
    got = b""
    with pytest.raises(ConnectionResetError):
        while chunk := await r.read(100):
            got += chunk
    assert got in (b"", b"partial")
    w.close()
    await eventually(lambda: not tcp_proxy(mesh, port).connections, "connection forgotten")
    await backend.stop()


async def test_established_connections_survive_a_backend_change(mesh: UserspaceDataPath) -> None:
    a = await Backend("a", name_then_echo).start()
    b = await Backend("b", name_then_echo).start()
    port = free_port(NODE)
    await mesh.apply(tcp_table(port, a))
    r, w = await asyncio.open_connection(NODE, port)
    assert await r.readline() == b"a\n"
    await mesh.apply(tcp_table(port, b))
    assert await whoami(NODE, port) == "b"
    w.write(b"ping\n")
    assert await r.readline() == b"ping\n"  # still talking to a
    w.close()
    await a.stop()
    await b.stop()


async def test_changes_of_backends_fail_no_client_that_retries_once(
    mesh: UserspaceDataPath,
) -> None:
    """Tasks come and go (a scale-down, a drain) while clients keep connecting: a task may
    die before the table says so. A client that retries once never fails."""
    backends = [await Backend(f"b{i}", name_then_echo).start() for i in range(4)]
    port = free_port(NODE)
    await mesh.apply(tcp_table(port, *backends))
    failures: list[str] = []
    first_failures = 0
    stop = asyncio.Event()

    async def request() -> str:
        r, w = await asyncio.open_connection(NODE, port)
        try:
            name = (await r.readline()).decode().strip()
            if not name:
                raise ConnectionError("empty answer")
            w.write(b"x\n")
            if await r.readline() != b"x\n":
                raise ConnectionError("no echo")
            return name
        finally:
            w.close()

    async def client() -> None:
        nonlocal first_failures
        while not stop.is_set():
            try:
                await request()
            except OSError:
                first_failures += 1
                try:
                    await request()
                except OSError as e:
                    failures.append(repr(e))
            await asyncio.sleep(0)

    clients = [asyncio.create_task(client()) for _ in range(8)]
    await asyncio.sleep(0.05)
    # b3 dies before the managers notice, then leaves the table.
    await backends[3].stop()
    await asyncio.sleep(0.05)
    await mesh.apply(tcp_table(port, *backends[:3]))
    # b2 is drained: out of the table first, then stopped.
    await mesh.apply(tcp_table(port, *backends[:2]))
    await asyncio.sleep(0.05)
    await backends[2].stop()
    # A new task joins.
    new = await Backend("b4", name_then_echo).start()
    await mesh.apply(tcp_table(port, backends[0], backends[1], new))
    await asyncio.sleep(0.05)
    stop.set()
    await asyncio.gather(*clients)
    assert failures == []
    assert {await whoami(NODE, port) for _ in range(6)} == {"b0", "b1", "b4"}
    for b in (*backends[:2], new):
        await b.stop()


async def test_apply_is_idempotent_and_removal_closes_the_port(mesh: UserspaceDataPath) -> None:
    a = await Backend("a", name_then_echo).start()
    port = free_port(NODE)
    table = tcp_table(port, a)
    await mesh.apply(table)
    proxy = mesh.proxy("tcp", port)
    await mesh.apply(table)
    assert mesh.proxy("tcp", port) is proxy
    assert mesh.table == table
    await mesh.apply(RoutingTable())
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(NODE, port)
    await a.stop()


async def test_a_port_taken_is_reported_and_retried(mesh: UserspaceDataPath) -> None:
    a = await Backend("a", name_then_echo).start()
    port = free_port(NODE)
    squatter = socket.socket()
    squatter.bind((NODE, port))
    squatter.listen()
    table = tcp_table(port, a)
    await mesh.apply(table)
    assert list(mesh.errors) == [f"{port}/tcp"]
    squatter.close()
    await mesh.apply(table)
    assert mesh.errors == {}
    assert await whoami(NODE, port) == "a"
    await a.stop()


async def test_stop_closes_listeners_and_connections() -> None:
    dp = UserspaceDataPath(MeshConfig(addresses=[NODE]))
    await dp.start()
    a = await Backend("a", name_then_echo).start()
    port = free_port(NODE)
    await dp.apply(tcp_table(port, a))
    r, w = await asyncio.open_connection(NODE, port)
    assert await r.readline() == b"a\n"
    await dp.stop()
    assert await r.read(-1) == b""  # aborted by the proxy
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(NODE, port)
    w.close()
    await a.stop()


# --- UDP -------------------------------------------------------------------------------


async def udp_backend(name: str) -> UdpEcho:
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_datagram_endpoint(
        lambda: UdpEcho(name), local_addr=("127.0.0.1", 0)
    )
    return proto


def udp_table(port: int, *backends: UdpEcho) -> RoutingTable:
    eps = tuple(Endpoint("127.0.0.1", b.port) for b in backends)
    return RoutingTable.of([PortRoute("udp", port, "dns", eps)])


async def test_udp_flows_stick_to_a_backend_and_spread_over_clients() -> None:
    clock = FakeClock()
    dp = UserspaceDataPath(MeshConfig(addresses=[NODE], udp_idle_timeout=10, clock=clock))
    await dp.start()
    backends = [await udp_backend(f"u{i}") for i in range(2)]
    port = free_port(NODE, socket.SOCK_DGRAM)
    await dp.apply(udp_table(port, *backends))
    clients = [await udp_client(NODE, port) for _ in range(4)]
    answers = [await c.ask(b"q1") for c in clients]
    assert sorted(a.split(b":")[0] for a in answers) == [b"u0", b"u0", b"u1", b"u1"]
    # The same client keeps its backend.
    for c, first in zip(clients, answers, strict=True):
        assert (await c.ask(b"q2")).split(b":")[0] == first.split(b":")[0]
    proxy = dp.proxy("udp", port)
    assert proxy is not None and len(proxy.flows) == 4
    # Idle flows are forgotten.
    await clock.advance(11)
    await eventually(lambda: not proxy.flows, "idle flows dropped")
    assert (await clients[0].ask(b"again")).endswith(b":again")
    for c in clients:
        c.transport.close()  # type: ignore[union-attr]
    for b in backends:
        b.transport.close()  # type: ignore[union-attr]
    await dp.stop()


async def test_udp_flow_moves_when_its_backend_leaves() -> None:
    dp = UserspaceDataPath(MeshConfig(addresses=[NODE]))
    await dp.start()
    a, b = await udp_backend("a"), await udp_backend("b")
    port = free_port(NODE, socket.SOCK_DGRAM)
    await dp.apply(udp_table(port, a, b))
    c = await udp_client(NODE, port)
    first = (await c.ask(b"x")).split(b":")[0]
    stay = b if first == b"a" else a
    await dp.apply(udp_table(port, stay))
    assert (await c.ask(b"y")) == stay.name.encode() + b":y"
    c.transport.close()  # type: ignore[union-attr]
    a.transport.close()  # type: ignore[union-attr]
    b.transport.close()  # type: ignore[union-attr]
    await dp.stop()


async def test_udp_refusing_backend_is_skipped_on_retry() -> None:
    dp = UserspaceDataPath(MeshConfig(addresses=[NODE]))
    await dp.start()
    live = await udp_backend("live")
    dead = Endpoint("127.0.0.1", free_port(kind=socket.SOCK_DGRAM))
    port = free_port(NODE, socket.SOCK_DGRAM)
    eps = (dead, Endpoint("127.0.0.1", live.port))
    await dp.apply(RoutingTable.of([PortRoute("udp", port, "dns", eps)]))
    c = await udp_client(NODE, port)
    answers = []
    for i in range(4):  # a client that retries after a short wait gets through
        for _attempt in range(2):
            try:
                answers.append(await c.ask(f"{i}".encode(), wait=0.5))
                break
            except TimeoutError:
                continue
    assert answers == [b"live:0", b"live:1", b"live:2", b"live:3"]
    c.transport.close()  # type: ignore[union-attr]
    live.transport.close()  # type: ignore[union-attr]
    await dp.stop()


async def say_bye(_b, _r, w) -> None:  # type: ignore[no-untyped-def]
    w.write(b"bye")
    w.close()


async def test_a_backend_that_speaks_and_leaves_at_once(mesh: UserspaceDataPath) -> None:
    backend = await Backend("b", say_bye).start()
    port = free_port(NODE)
    await mesh.apply(tcp_table(port, backend))
    for _ in range(20):
        r, w = await asyncio.open_connection(NODE, port)
        assert await r.read(-1) == b"bye"
        w.close()
    await backend.stop()


def test_the_proxy_works_on_uvloop() -> None:
    """uvloop is optional (a modest gain, see bench/mesh.py); it delivers data the proxy
    asked not to read yet, which the proxy must hold rather than lose."""
    uvloop = pytest.importorskip("uvloop", reason="uvloop is not installed (optional)")

    async def scenario() -> None:
        dp = UserspaceDataPath(MeshConfig(addresses=[NODE]))
        await dp.start()
        backend = await Backend("b", echo).start()
        port = free_port(NODE)
        await dp.apply(tcp_table(port, backend))
        for i in range(50):
            r, w = await asyncio.open_connection(NODE, port)
            w.write(b"early %d" % i)  # sent before the proxy has a backend
            w.write_eof()
            assert await r.read(-1) == b"early %d" % i
            w.close()
        bye = await Backend("bye", say_bye).start()
        await dp.apply(tcp_table(port, bye))
        for _ in range(50):
            r, w = await asyncio.open_connection(NODE, port)
            assert await r.read(-1) == b"bye"
            w.close()
        await bye.stop()
        await backend.stop()
        await dp.stop()

    uvloop.run(scenario())
