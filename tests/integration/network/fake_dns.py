"""A stand-in for the node's upstream resolver, on loopback: answers A queries from a table,
over UDP and TCP on one port, so tests and bench/dns.py never send a query off the machine.

``behaviour`` makes it misbehave as real upstreams do: "silent" (never answers),
"servfail", "refused"; names in ``truncate`` are answered over UDP with TC and no records
(as an upstream does when the answer does not fit), in full over TCP.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


@dataclass
class Seen:
    name: str
    rdtype: str
    tcp: bool
    id: int


@dataclass
class FakeUpstream:
    host: str = "127.0.0.1"
    answers: Mapping[str, Iterable[str]] = field(default_factory=dict)
    behaviour: str = "answer"  # answer | silent | servfail | refused
    truncate: frozenset[str] = frozenset()
    seen: list[Seen] = field(default_factory=list)
    port: int = 0
    _udp: asyncio.DatagramTransport | None = None
    _tcp: asyncio.Server | None = None

    async def start(self) -> FakeUpstream:
        loop = asyncio.get_running_loop()
        # UDP and TCP on the same port: take a free UDP port, then TCP on it (retry on the
        # rare port another test took for TCP meanwhile).
        for _ in range(20):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind((self.host, 0))
            port = udp.getsockname()[1]
            try:
                self._tcp = await asyncio.start_server(self._stream, self.host, port)
            except OSError:
                udp.close()
                continue
            self.port = port
            self._udp, _ = await loop.create_datagram_endpoint(lambda: _Datagrams(self), sock=udp)
            return self
        raise RuntimeError("no free port for the fake upstream")

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def reply(self, wire: bytes, tcp: bool) -> bytes | None:
        query = dns.message.from_wire(wire)
        q = query.question[0]
        name = q.name.to_text(omit_final_dot=True).lower()
        self.seen.append(Seen(name, dns.rdatatype.to_text(q.rdtype), tcp, query.id))
        if self.behaviour == "silent":
            return None
        response = dns.message.make_response(query, recursion_available=True)
        if self.behaviour in ("servfail", "refused"):
            response.set_rcode(dns.rcode.from_text(self.behaviour.upper()))
            return response.to_wire()
        if name not in self.answers:
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response.to_wire()
        if not tcp and name in self.truncate:
            response.flags |= dns.flags.TC
            return response.to_wire()
        if q.rdtype == dns.rdatatype.A:
            response.answer.append(
                dns.rrset.from_text_list(q.name, 300, "IN", "A", list(self.answers[name]))
            )
        return response.to_wire()

    async def _stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                size = int.from_bytes(await reader.readexactly(2), "big")
                data = self.reply(await reader.readexactly(size), tcp=True)
                if data is not None:
                    writer.write(len(data).to_bytes(2, "big") + data)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, upstream: FakeUpstream) -> None:
        self.upstream = upstream
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = self.upstream.reply(data, tcp=False)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)
