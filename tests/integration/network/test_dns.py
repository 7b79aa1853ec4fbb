"""The overlay resolver on loopback: served on 127.0.0.2, asked from 127.0.0.x sources that
stand for tasks, forwarding to fake upstreams on 127.0.0.3 (fake_dns.py); nothing leaves
the machine."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator, Sequence

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.rcode
import pytest

from shoal.network.dns.records import NetworkRecords, ServiceEntry, TaskEntry
from shoal.network.dns.server import DnsServer
from shoal.network.dns.upstream import LOCAL, RESOLV_CONF, from_resolv_conf
from tests.integration.network.fake_dns import FakeUpstream
from tests.integration.network.helpers import eventually
from tests.integration.network.records import FRONT

SERVER = "127.0.0.2"
UPSTREAM = "127.0.0.3"
ON_FRONT = "127.0.0.10"  # a task on the front network
ON_BACK_AND_FRONT = "127.0.0.11"  # a task on back, then front
STRANGER = "127.0.0.99"  # no task of ours
WAIT = 5.0  # how long a test waits for an answer that should come

BACK = NetworkRecords.build(
    "back",
    [ServiceEntry("web", "vip", "10.0.2.2", tasks=(TaskEntry("web.1.t1", "10.0.2.11"),))],
)
EXTERNAL = {
    "example.com": ["192.0.2.10"],
    "many.example": [f"192.0.2.{i}" for i in range(1, 61)],
    # 100 addresses: 1.6 kB, which the fake upstream sends over UDP whatever the client's
    # size, as an upstream that ignores EDNS does
    "huge.example": [f"198.51.100.{i}" for i in range(1, 101)],
}


class Clients:
    """Which source address is which task: what the node's ``who`` does."""

    def __init__(self) -> None:
        self.table: dict[str, list[NetworkRecords]] = {
            ON_FRONT: [FRONT],
            ON_BACK_AND_FRONT: [BACK, FRONT],
        }
        self.asked: list[str] = []

    def __call__(self, source: str) -> Sequence[NetworkRecords] | None:
        self.asked.append(source)
        return self.table.get(source)


def bound_pair(host: str) -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket bound to one free port on ``host``, as the node opens them in
    a network sandbox."""
    for _ in range(20):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind((host, 0))
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            tcp.bind((host, udp.getsockname()[1]))
        except OSError:
            udp.close()
            tcp.close()
            continue
        return udp, tcp
    raise RuntimeError("no free port")


class Resolver:
    def __init__(self, server: DnsServer, port: int, clients: Clients) -> None:
        self.server = server
        self.port = port
        self.clients = clients

    async def udp(self, name: str, rdtype: str = "A", source: str = ON_FRONT, **kw):
        q = dns.message.make_query(name, rdtype, **kw)
        r = await dns.asyncquery.udp(q, SERVER, timeout=WAIT, port=self.port, source=source)
        assert r.id == q.id
        return r

    async def tcp(self, name: str, rdtype: str = "A", source: str = ON_FRONT, **kw):
        q = dns.message.make_query(name, rdtype, **kw)
        r = await dns.asyncquery.tcp(q, SERVER, timeout=WAIT, port=self.port, source=source)
        assert r.id == q.id
        return r


async def serve(upstreams: list[str], **kw) -> tuple[Resolver, DnsServer]:
    clients = Clients()
    udp, tcp = bound_pair(SERVER)
    port = udp.getsockname()[1]
    server = DnsServer(clients, [udp, tcp], upstreams, rng=random.Random(1), **kw)
    await server.start()
    return Resolver(server, port, clients), server


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    up = await FakeUpstream(UPSTREAM, EXTERNAL, truncate=frozenset({"many.example"})).start()
    yield up
    await up.stop()


@pytest.fixture
async def resolver(upstream: FakeUpstream) -> AsyncIterator[Resolver]:
    r, server = await serve([upstream.address])
    yield r
    await server.stop()


def addresses(msg: dns.message.Message) -> list[str]:
    return [rd.to_text() for rrset in msg.answer for rd in rrset]


async def test_our_names_over_udp_and_tcp(resolver: Resolver, upstream: FakeUpstream) -> None:
    for ask in (resolver.udp, resolver.tcp):
        r = await ask("web")
        assert r.rcode() == dns.rcode.NOERROR and addresses(r) == ["10.0.1.2"]
        assert r.answer[0].ttl == 600
        r = await ask("Tasks.Web.")
        assert sorted(addresses(r)) == ["10.0.1.11", "10.0.1.12", "10.0.1.13"]
        r = await ask("web", "AAAA")
        assert r.rcode() == dns.rcode.NOERROR and r.answer == []
        r = await ask("12.1.0.10.in-addr.arpa", "PTR")
        assert addresses(r) == ["web.2.t2.front."]
    assert upstream.seen == []  # nothing of ours leaks upstream


async def test_the_askers_networks_decide(resolver: Resolver) -> None:
    assert addresses(await resolver.udp("web", source=ON_BACK_AND_FRONT)) == ["10.0.2.2"]
    assert addresses(await resolver.udp("web", source=ON_FRONT)) == ["10.0.1.2"]
    r = await resolver.udp("web", source=STRANGER)
    assert r.rcode() == dns.rcode.REFUSED and r.answer == []
    assert set(resolver.clients.asked) == {ON_FRONT, ON_BACK_AND_FRONT, STRANGER}


async def test_records_are_read_on_every_query(resolver: Resolver) -> None:
    assert addresses(await resolver.udp("web")) == ["10.0.1.2"]
    assert addresses(await resolver.udp("web")) == ["10.0.1.2"]
    assert resolver.server.cache.hits >= 1  # the second answer was the first one, kept
    moved = NetworkRecords.build("front", [ServiceEntry("web", "vip", "10.0.1.200")])
    resolver.clients.table[ON_FRONT] = [moved]
    assert addresses(await resolver.udp("web")) == ["10.0.1.200"]


async def test_a_failing_who_is_servfail_not_refused(upstream: FakeUpstream) -> None:
    def who(source: str) -> Sequence[NetworkRecords] | None:
        if source == ON_BACK_AND_FRONT:
            raise RuntimeError("a bug in the node")
        return [FRONT]

    udp, tcp = bound_pair(SERVER)
    server = DnsServer(who, [udp, tcp], [upstream.address])
    await server.start()
    resolver = Resolver(server, udp.getsockname()[1], Clients())
    try:
        for _ in range(2):
            r = await resolver.udp("web", source=ON_BACK_AND_FRONT)
            assert r.rcode() == dns.rcode.SERVFAIL
            assert addresses(await resolver.udp("web")) == ["10.0.1.2"]
    finally:
        await server.stop()


async def test_other_names_are_forwarded_with_the_clients_id(
    resolver: Resolver, upstream: FakeUpstream
) -> None:
    for ask, tcp in ((resolver.udp, False), (resolver.tcp, True)):
        r = await ask("example.com")
        assert r.rcode() == dns.rcode.NOERROR and addresses(r) == ["192.0.2.10"]
        assert (upstream.seen[-1].name, upstream.seen[-1].tcp) == ("example.com", tcp)
        r = await ask("nowhere.example")
        assert r.rcode() == dns.rcode.NXDOMAIN
    assert resolver.server.forwarding == 0


async def test_our_answer_too_big_for_udp_is_truncated_then_whole_over_tcp(
    resolver: Resolver,
) -> None:
    r = await resolver.udp("big")
    assert r.flags & dns.flags.TC
    assert 0 < len(addresses(r)) < 100
    q = dns.message.make_query("big", "A")
    r, used_tcp = await dns.asyncquery.udp_with_fallback(
        q, SERVER, timeout=WAIT, port=resolver.port, source=ON_FRONT
    )
    assert used_tcp and not r.flags & dns.flags.TC
    assert sorted(addresses(r)) == sorted(f"10.0.3.{i}" for i in range(1, 101))
    # a client that takes more over UDP gets more, up to our 1232 bytes
    r = await resolver.udp("big", use_edns=0, payload=4096)
    assert r.flags & dns.flags.TC and 40 < len(addresses(r)) < 100


async def test_upstream_truncation_is_relayed_and_tcp_gets_it_whole(
    resolver: Resolver, upstream: FakeUpstream
) -> None:
    r = await resolver.udp("many.example")
    assert r.flags & dns.flags.TC and r.answer == []
    q = dns.message.make_query("many.example", "A")
    r, used_tcp = await dns.asyncquery.udp_with_fallback(
        q, SERVER, timeout=WAIT, port=resolver.port, source=ON_FRONT
    )
    assert used_tcp and len(addresses(r)) == 60
    assert [(s.name, s.tcp) for s in upstream.seen] == [
        ("many.example", False),
        ("many.example", False),
        ("many.example", True),
    ]


async def test_an_upstream_reply_too_long_for_the_client_is_cut_with_tc(
    resolver: Resolver,
) -> None:
    r = await resolver.udp("huge.example")  # no EDNS: 512 bytes at most
    assert r.flags & dns.flags.TC and 0 < len(addresses(r)) < 100
    r = await resolver.udp("huge.example", use_edns=0, payload=4096)  # we send 1232 at most
    assert r.flags & dns.flags.TC and len(addresses(r)) > len(
        addresses(await resolver.udp("huge.example"))
    )
    r = await resolver.tcp("huge.example")
    assert not r.flags & dns.flags.TC and len(addresses(r)) == 100


async def test_several_queries_on_one_tcp_connection_answered_as_they_come(
    resolver: Resolver,
) -> None:
    reader, writer = await asyncio.open_connection(SERVER, resolver.port, local_addr=(ON_FRONT, 0))
    queries = [dns.message.make_query(n, "A") for n in ("example.com", "web", "tasks.web")]
    for q in queries:
        wire = q.to_wire()
        writer.write(len(wire).to_bytes(2, "big") + wire)
    got = {}
    for _ in queries:
        size = int.from_bytes(await asyncio.wait_for(reader.readexactly(2), WAIT), "big")
        r = dns.message.from_wire(await reader.readexactly(size))
        got[r.id] = r
    writer.close()
    assert set(got) == {q.id for q in queries}
    assert addresses(got[queries[0].id]) == ["192.0.2.10"]
    assert addresses(got[queries[1].id]) == ["10.0.1.2"]


async def test_a_tcp_client_that_stops_sending_still_gets_its_answers(
    resolver: Resolver,
) -> None:
    reader, writer = await asyncio.open_connection(SERVER, resolver.port, local_addr=(ON_FRONT, 0))
    q = dns.message.make_query("example.com", "A")  # forwarded: answered after the EOF
    wire = q.to_wire()
    writer.write(len(wire).to_bytes(2, "big") + wire)
    writer.write_eof()
    data = await asyncio.wait_for(reader.read(), WAIT)
    writer.close()
    r = dns.message.from_wire(data[2:])
    assert int.from_bytes(data[:2], "big") == len(data) - 2
    assert r.id == q.id and addresses(r) == ["192.0.2.10"]


async def test_a_silent_upstream_is_passed_over_for_the_next(upstream: FakeUpstream) -> None:
    silent = await FakeUpstream(UPSTREAM, behaviour="silent").start()
    resolver, server = await serve([silent.address, upstream.address], timeout=0.3)
    try:
        for ask in (resolver.udp, resolver.tcp):
            assert addresses(await ask("example.com")) == ["192.0.2.10"]
        assert [s.tcp for s in silent.seen] == [False, True]
    finally:
        await server.stop()
        await silent.stop()


async def test_a_closed_port_or_a_failing_upstream_is_passed_over(upstream: FakeUpstream) -> None:
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.bind((UPSTREAM, 0))  # bound then closed: nothing listens on that port
    dead = f"{UPSTREAM}:{closed.getsockname()[1]}"
    closed.close()
    failing = await FakeUpstream(UPSTREAM, behaviour="servfail").start()
    refusing = await FakeUpstream(UPSTREAM, behaviour="refused").start()
    resolver, server = await serve([dead, failing.address, refusing.address, upstream.address])
    try:
        for ask in (resolver.udp, resolver.tcp):
            r = await ask("example.com")
            assert r.rcode() == dns.rcode.NOERROR and addresses(r) == ["192.0.2.10"]
        assert len(failing.seen) == len(refusing.seen) == 2
    finally:
        await server.stop()
        await failing.stop()
        await refusing.stop()


async def test_servfail_when_every_upstream_fails() -> None:
    silent = await FakeUpstream(UPSTREAM, behaviour="silent").start()
    refusing = await FakeUpstream(UPSTREAM, behaviour="refused").start()
    resolver, server = await serve([silent.address], timeout=0.2)
    try:
        r = await resolver.udp("example.com")
        assert r.rcode() == dns.rcode.SERVFAIL
        assert r.question == dns.message.make_query("example.com", "A").question
        assert server.forwarding == 0
    finally:
        await server.stop()
    # every upstream answered, with errors: the client gets the last one's answer
    resolver, server = await serve([silent.address, refusing.address], timeout=0.2)
    try:
        assert (await resolver.tcp("example.com")).rcode() == dns.rcode.REFUSED
    finally:
        await server.stop()
        await silent.stop()
        await refusing.stop()


async def test_the_budget_bounds_the_wait_over_all_upstreams() -> None:
    silent = await FakeUpstream(UPSTREAM, behaviour="silent").start()
    resolver, server = await serve([silent.address] * 5, timeout=0.3, budget=0.5)
    try:
        assert (await resolver.udp("example.com")).rcode() == dns.rcode.SERVFAIL
        # 0.3 s on the first, the 0.2 s left on the second (or less, on a loaded machine
        # whose timers fire late): never all five
        assert 1 <= len(silent.seen) <= 2
    finally:
        await server.stop()
        await silent.stop()


async def test_forwarding_is_bounded() -> None:
    silent = await FakeUpstream(UPSTREAM, behaviour="silent").start()
    resolver, server = await serve([silent.address], timeout=WAIT, max_forwards=2)
    try:
        waiting = [asyncio.ensure_future(resolver.udp(f"n{i}.example")) for i in range(2)]
        await eventually(lambda: len(silent.seen) == 2, "two queries upstream")
        assert server.forwarding == 2
        r = await resolver.udp("n3.example")
        assert r.rcode() == dns.rcode.SERVFAIL and len(silent.seen) == 2
        # our own names do not wait on the upstreams
        assert addresses(await resolver.udp("web")) == ["10.0.1.2"]
        for w in waiting:
            w.cancel()
    finally:
        await server.stop()
        await silent.stop()
    assert server.forwarding == 0


async def udp_exchange(port: int, data: bytes, wait: float = 0.5) -> bytes | None:
    """Send raw bytes; the reply, or None if none came within ``wait``."""
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((ON_FRONT, 0))
        s.setblocking(False)
        s.connect((SERVER, port))
        s.send(data)
        try:
            return await asyncio.wait_for(loop.sock_recv(s, 65535), wait)
        except TimeoutError:
            return None


async def test_malformed_messages(resolver: Resolver) -> None:
    good = dns.message.make_query("web", "A")
    wire = good.to_wire()
    reply = await udp_exchange(resolver.port, wire[:12] + b"\x07garbage")
    assert reply is not None
    r = dns.message.from_wire(reply)
    assert r.id == good.id and r.rcode() == dns.rcode.FORMERR
    assert await udp_exchange(resolver.port, b"\x01\x02\x03") is None
    response = dns.message.make_response(good).to_wire()
    assert await udp_exchange(resolver.port, response) is None
    # and the server goes on answering
    assert addresses(await resolver.udp("web")) == ["10.0.1.2"]
    assert addresses(await resolver.tcp("web")) == ["10.0.1.2"]


async def test_an_idle_tcp_connection_is_closed(upstream: FakeUpstream) -> None:
    resolver, server = await serve([upstream.address], tcp_idle=0.2)
    try:
        reader, writer = await asyncio.open_connection(
            SERVER, resolver.port, local_addr=(ON_FRONT, 0)
        )
        assert await asyncio.wait_for(reader.read(), WAIT) == b""  # EOF from the server
        writer.close()
    finally:
        await server.stop()


async def test_a_tcp_connection_waiting_on_an_upstream_is_not_idle() -> None:
    silent = await FakeUpstream(UPSTREAM, behaviour="silent").start()
    resolver, server = await serve([silent.address], timeout=0.8, tcp_idle=0.2)
    try:
        reader, writer = await asyncio.open_connection(
            SERVER, resolver.port, local_addr=(ON_FRONT, 0)
        )
        q = dns.message.make_query("example.com", "A")
        wire = q.to_wire()
        writer.write(len(wire).to_bytes(2, "big") + wire)
        size = int.from_bytes(await asyncio.wait_for(reader.readexactly(2), WAIT), "big")
        r = dns.message.from_wire(await reader.readexactly(size))
        assert r.id == q.id and r.rcode() == dns.rcode.SERVFAIL
        assert await asyncio.wait_for(reader.read(), WAIT) == b""  # then idle: closed
        writer.close()
    finally:
        await server.stop()
        await silent.stop()


async def test_tcp_connections_are_bounded(upstream: FakeUpstream) -> None:
    resolver, server = await serve([upstream.address], max_tcp=1)
    try:
        first = await asyncio.open_connection(SERVER, resolver.port, local_addr=(ON_FRONT, 0))
        wire = dns.message.make_query("web", "A").to_wire()
        first[1].write(len(wire).to_bytes(2, "big") + wire)
        await first[0].readexactly(2)  # the first is being served
        second = await asyncio.open_connection(SERVER, resolver.port, local_addr=(ON_FRONT, 0))
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            second[1].write(len(wire).to_bytes(2, "big") + wire)
            await asyncio.wait_for(second[0].readexactly(2), WAIT)
        first[1].close()
        second[1].close()
    finally:
        await server.stop()


async def test_remove_and_stop_close_the_sockets(upstream: FakeUpstream) -> None:
    clients = Clients()
    udp1, tcp1 = bound_pair(SERVER)
    udp2, tcp2 = bound_pair(SERVER)
    server = DnsServer(clients, [udp1, tcp1], [upstream.address])
    await server.start()
    await server.add(udp2)
    await server.add(tcp2)
    port2 = udp2.getsockname()[1]
    await server.remove(udp1)
    await server.remove(tcp1)
    assert udp1.fileno() == -1 and tcp1.fileno() == -1
    assert set(server.sockets) == {udp2, tcp2}
    r = await Resolver(server, port2, clients).tcp("web")
    assert addresses(r) == ["10.0.1.2"]
    await server.stop()
    assert udp2.fileno() == -1 and tcp2.fileno() == -1 and server.sockets == []
    # no answer: the datagram is lost, or refused (ICMP) if the client's socket is connected
    with pytest.raises((dns.exception.Timeout, ConnectionRefusedError)):
        q = dns.message.make_query("web", "A")
        await dns.asyncquery.udp(q, SERVER, timeout=0.5, port=port2, source=ON_FRONT)


async def test_upstreams_default_to_the_nodes_resolv_conf() -> None:
    server = DnsServer(Clients())
    await server.start()
    try:
        try:
            expected = from_resolv_conf(RESOLV_CONF.read_text())
        except OSError:
            expected = LOCAL
        assert server.upstreams == expected
    finally:
        await server.stop()
