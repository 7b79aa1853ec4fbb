"""Relaying a query the overlay resolver does not own to the node's upstream resolvers.

Upstreams are tried in order, each once, as Docker's embedded DNS tries its external
servers: the next one on a timeout, a network error, or a SERVFAIL or REFUSED reply (an
upstream that cannot answer now, which another may). The reply is relayed as the upstream
sent it, save for its ID. When every upstream fails the client gets the last SERVFAIL or
REFUSED an upstream sent, else a SERVFAIL of ours.

Timeouts. Docker waits 4 s for each external server. A glibc client waits 5 s for us
(RES_TIMEOUT), then asks again; so 4 s on one dead upstream means the client has given up
before the second upstream is even tried, and its retry starts the same wait over. We wait
``timeout`` (2 s: a recursive resolver that has not answered in 2 s is rarely about to)
per upstream, and all of them together no longer than ``budget`` (4.5 s), so the client
has an answer, if only a SERVFAIL, before its own timeout and moves on to its next
nameserver rather than repeating the same query into the same dead upstreams.

The query goes out as the client sent it: over UDP if it came over UDP, with its EDNS
size, so the upstream truncates for the client; a truncated reply (TC) is relayed as it
is, and the client asks again over TCP, which we then relay over TCP. A reply longer than
the client can take (an upstream that ignores EDNS), or than we send over UDP at all
(resolver.MAX_UDP, 1232 bytes: no fragments), is cut and flagged TC here.

A reply is read up to its question only, which is all it takes to match it to its
query, see its rcode and its TC bit: relaying does not pay for reading every record.

Each query has a socket of its own, with a fresh source port, and a random ID upstream, so
that a reply can only be taken for the query it answers (spoofing needs both). Sockets are
opened in the calling thread's network namespace: the daemon's, where the node's resolvers
are reachable, not the sandbox the query came from.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
from collections.abc import Sequence

import dns.exception
import dns.flags
import dns.message
import dns.rcode

from shoal.network.dns.resolver import encode, failure
from shoal.network.dns.upstream import Upstream

log = logging.getLogger(__name__)

UPSTREAM_TIMEOUT = 2.0
FORWARD_BUDGET = 4.5
_RETRY_ELSEWHERE = frozenset({dns.rcode.SERVFAIL, dns.rcode.REFUSED})
# Rcodes with which an upstream may leave out the question section (as dnspython's
# Message.is_response allows).
_NO_QUESTION_OK = frozenset(
    {dns.rcode.FORMERR, dns.rcode.SERVFAIL, dns.rcode.NOTIMP, dns.rcode.REFUSED}
)


class Forwarder:
    def __init__(
        self,
        upstreams: Sequence[Upstream],
        timeout: float = UPSTREAM_TIMEOUT,
        budget: float = FORWARD_BUDGET,
    ) -> None:
        self.upstreams = tuple(upstreams)
        self.timeout = timeout
        self.budget = budget

    async def forward(
        self, query: dns.message.Message, wire: bytes, tcp: bool, limit: int
    ) -> bytes:
        """The reply for the client that sent ``query`` (as ``wire``), at most ``limit``
        bytes, with the client's ID."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.budget
        last_error: tuple[bytes, dns.message.Message] | None = None
        for upstream in self.upstreams:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            qid = secrets.randbits(16)
            out = qid.to_bytes(2, "big") + wire[2:]
            try:
                async with asyncio.timeout(min(self.timeout, remaining)):
                    if tcp:
                        data, reply = await _exchange_tcp(upstream, out, query, qid)
                    else:
                        data, reply = await _exchange_udp(upstream, out, query, qid)
            except TimeoutError:
                log.debug("upstream %s: no answer in time", upstream)
                continue
            except (OSError, EOFError, dns.exception.DNSException) as e:
                log.debug("upstream %s: %s", upstream, e)
                continue
            if reply.rcode() in _RETRY_ELSEWHERE:
                last_error = (data, reply)
                continue
            return _for_client(query, data, reply, limit)
        if last_error is not None:
            return _for_client(query, *last_error, limit)
        return encode(failure(query, dns.rcode.SERVFAIL).message, limit)


def _for_client(
    query: dns.message.Message, data: bytes, reply: dns.message.Message, limit: int
) -> bytes:
    if len(data) <= limit:
        return query.id.to_bytes(2, "big") + data[2:]
    whole = dns.message.from_wire(data)  # the reply was read up to its question only
    whole.id = query.id
    return encode(whole, limit)  # cut record by record, as our own answers


def _answers(query: dns.message.Message, qid: int, reply: dns.message.Message) -> bool:
    if reply.id != qid or not reply.flags & dns.flags.QR or reply.opcode() != query.opcode():
        return False
    if not reply.question and reply.rcode() in _NO_QUESTION_OK:
        return True
    return reply.question == query.question


async def _exchange_udp(
    upstream: Upstream, out: bytes, query: dns.message.Message, qid: int
) -> tuple[bytes, dns.message.Message]:
    loop = asyncio.get_running_loop()
    with socket.socket(upstream.family, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        # Connected: the kernel passes on datagrams from the upstream's address alone, and
        # reports an ICMP "port unreachable" as ECONNREFUSED, so a dead upstream on a
        # reachable host fails at once rather than at the timeout.
        sock.connect(upstream.address)
        sock.send(out)
        while True:
            data = await loop.sock_recv(sock, 65535)
            try:
                reply = dns.message.from_wire(data, question_only=True)
            except Exception:  # not a DNS message: wait on for the real reply
                continue
            if _answers(query, qid, reply):
                return data, reply


async def _exchange_tcp(
    upstream: Upstream, out: bytes, query: dns.message.Message, qid: int
) -> tuple[bytes, dns.message.Message]:
    reader, writer = await asyncio.open_connection(upstream.host, upstream.port)
    try:
        writer.write(len(out).to_bytes(2, "big") + out)
        while True:
            size = int.from_bytes(await reader.readexactly(2), "big")
            data = await reader.readexactly(size)
            try:
                reply = dns.message.from_wire(data, question_only=True)
            except Exception:  # as over UDP: not the reply, wait on for it
                continue
            if _answers(query, qid, reply):
                return data, reply
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
