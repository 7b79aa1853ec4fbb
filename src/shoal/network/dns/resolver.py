"""What the overlay resolver does with one query: answer it, or send it upstream.

``decide`` is the whole policy, as a value: ``Answer(message)`` to send back, or
``Forward()`` to relay the query to the node's own resolvers. It follows Docker's embedded
DNS in swarm mode:

- A for one of our names (records.py): its addresses, TTL 600, in a random order on every
  answer (Docker shuffles them too), so that clients that take the first address spread
  over the tasks;
- PTR for a task address or a VIP: its name;
- AAAA, or any other type, for one of our names: no error and no answer ("no data"), as
  Docker answers AAAA and MX for its names; we do the same for every other type rather
  than let a query for an internal name leak to the upstream resolvers;
- a known name with no address (a service with no running task): no data as well. Docker
  drops such a name from its table and forwards it, so the client gets the upstream's
  NXDOMAIN, which caching stubs then keep for the upstream's negative TTL (a day for the
  root zone): long after the tasks have started. An answer without SOA is not cached;
- every other name, other classes and PTR for addresses we do not know: forward;
- a client the node does not know (``networks`` is None): REFUSED, so that nothing but our
  own tasks uses the node as an open resolver.

Nothing here does I/O; the random order comes from the ``random.Random`` passed in, so
tests are deterministic. ``encode`` fits an answer to the transport (UDP: 512 bytes, or
the client's EDNS size), dropping the records that do not fit and setting TC.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Sequence
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.PTR
import dns.reversename
import dns.rrset

from shoal.network.dns.records import (
    Address,
    NetworkRecords,
    lookup_address,
    lookup_name,
    parse_address,
)

TTL = 600  # Docker's embedded DNS answers with this TTL
# The EDNS payload we advertise and the most we send over UDP even to a client that takes
# more: the size DNS flag day 2020 settled on, below any MTU on the path, so an answer is
# never fragmented.
MAX_UDP = 1232
# Without EDNS a UDP message is at most 512 bytes (RFC 1035).
CLASSIC_UDP = 512
MAX_TCP = 65535
_OPCODE_AND_RD = 0x7800 | dns.flags.RD


@dataclass(frozen=True)
class Answer:
    message: dns.message.Message


@dataclass(frozen=True)
class Forward:
    pass


Decision = Answer | Forward


def decide(
    query: dns.message.Message,
    networks: Sequence[NetworkRecords] | None,
    rng: random.Random,
) -> Decision:
    """The answer to ``query`` from a client on ``networks`` (its networks' records, in its
    order; None: not a client of ours), or ``Forward()``."""
    if networks is None:
        return failure(query, dns.rcode.REFUSED)
    if query.opcode() != dns.opcode.QUERY:
        return failure(query, dns.rcode.NOTIMP)
    if len(query.question) != 1:
        return failure(query, dns.rcode.FORMERR)
    question = query.question[0]
    if question.rdclass != dns.rdataclass.IN:
        return Forward()
    qname, qtype = question.name, question.rdtype
    if qtype == dns.rdatatype.PTR:
        return _pointer(query, networks, qname)
    addresses = lookup_name(networks, qname.to_text(omit_final_dot=True))
    if addresses is None:
        return Forward()
    response = _response(query)
    if qtype in (dns.rdatatype.A, dns.rdatatype.ANY):
        _add_addresses(response, qname, 4, addresses, rng)
    if qtype in (dns.rdatatype.AAAA, dns.rdatatype.ANY):
        _add_addresses(response, qname, 6, addresses, rng)
    return Answer(response)


def parse_query(wire: bytes) -> dns.message.Message | Answer | None:
    """The query in ``wire``; else, for a query we cannot read, the FORMERR answer (when
    its header can be read: it carries the query's ID); else None, to drop it. Messages
    that are responses are dropped rather than answered, so that two resolvers pointed at
    each other do not answer each other's answers forever."""
    if len(wire) < 12 or wire[2] & 0x80:
        return None
    try:
        return dns.message.from_wire(wire)
    except Exception:  # dnspython raises many kinds on bad input; all mean the same here
        pass
    flags = int.from_bytes(wire[2:4], "big")
    reply = dns.message.Message(id=int.from_bytes(wire[0:2], "big"))
    reply.flags = dns.flags.QR | dns.flags.RA | (flags & _OPCODE_AND_RD)
    reply.set_rcode(dns.rcode.FORMERR)
    return Answer(reply)


def udp_limit(query: dns.message.Message) -> int:
    """The largest UDP answer ``query``'s sender takes (and we send)."""
    if query.edns < 0:
        return CLASSIC_UDP
    return min(max(query.payload, CLASSIC_UDP), MAX_UDP)


def encode(message: dns.message.Message, limit: int, rotation: int = 0) -> bytes:
    """``message`` on the wire in at most ``limit`` bytes, the records of each answer RRset
    rotated left by ``rotation``. When it does not fit, answer records are left out one at
    a time, not a whole RRset at once, and TC is set: a client that retries over TCP gets
    them all, one that does not (musl before 1.2.4) still gets as many addresses as fit, as
    from Docker. Records go out in the message's order: dnspython would shuffle them again,
    with its own random source, which would undo the determinism of ``decide``'s."""
    whole = message.answer
    try:
        if rotation:
            message.answer = [_rotated(rrset, rotation) for rrset in whole]
        try:
            return message.to_wire(max_size=limit, want_shuffle=False)
        except dns.exception.TooBig:
            pass
        message.answer = [
            dns.rrset.from_rdata(rrset.name, rrset.ttl, rd)
            for rrset in message.answer
            for rd in rrset
        ]
        return message.to_wire(max_size=limit, prefer_truncation=True, want_shuffle=False)
    finally:
        message.answer = whole


def rotations(message: dns.message.Message) -> int:
    """How many different orders rotating ``message``'s answer gives (1: one order)."""
    return max((len(rrset) for rrset in message.answer), default=1) or 1


def _rotated(rrset: dns.rrset.RRset, k: int) -> dns.rrset.RRset:
    rdatas = list(rrset)
    if len(rdatas) < 2:
        return rrset
    k %= len(rdatas)
    out = dns.rrset.RRset(rrset.name, rrset.rdclass, rrset.rdtype)
    out.update_ttl(rrset.ttl)
    for rd in rdatas[k:] + rdatas[:k]:
        out.add(rd)
    return out


def failure(query: dns.message.Message, rcode: dns.rcode.Rcode) -> Answer:
    """An answer to ``query`` with ``rcode`` and nothing else."""
    response = _response(query)
    response.set_rcode(rcode)
    return Answer(response)


def _response(query: dns.message.Message) -> dns.message.Message:
    # RA: we do recurse, through the upstream resolvers; Docker sets it on every answer.
    return dns.message.make_response(query, recursion_available=True, our_payload=MAX_UDP)


def _add_addresses(
    response: dns.message.Message,
    qname: dns.name.Name,
    version: int,
    addresses: Sequence[Address],
    rng: random.Random,
) -> None:
    chosen = [a for a in addresses if a.version == version]
    if not chosen:
        return
    rng.shuffle(chosen)
    rrset = dns.rrset.RRset(qname, dns.rdataclass.IN, _ADDRESS_TYPES[version])
    rrset.update_ttl(TTL)
    for a in chosen:
        rrset.add(_address_rdata(a))
    response.answer.append(rrset)


_ADDRESS_TYPES = {4: dns.rdatatype.A, 6: dns.rdatatype.AAAA}


@functools.lru_cache(maxsize=65536)
def _address_rdata(address: Address) -> dns.rdata.Rdata:
    """The rdata of an A or AAAA record for ``address``, as its packed bytes: the same
    record on the wire as dnspython's A and AAAA classes give, without their conversion of
    the address from text each time a record is hashed or rendered (three times per record
    per answer: with 20 addresses, a third of the CPU time of the whole query). Cached, as
    the same addresses are asked for again and again."""
    rdtype = _ADDRESS_TYPES[address.version]
    return dns.rdata.GenericRdata(dns.rdataclass.IN, rdtype, address.packed)


def _pointer(
    query: dns.message.Message, networks: Sequence[NetworkRecords], qname: dns.name.Name
) -> Decision:
    try:
        address = parse_address(dns.reversename.to_address(qname))
    except (dns.exception.SyntaxError, ValueError):
        return Forward()  # not an address's reverse name (a whole zone, say): not ours
    target = lookup_address(networks, address)
    if target is None:
        return Forward()
    response = _response(query)
    rdata = dns.rdtypes.ANY.PTR.PTR(
        dns.rdataclass.IN, dns.rdatatype.PTR, dns.name.from_text(target)
    )
    response.answer.append(dns.rrset.from_rdata(qname, TTL, rdata))
    return Answer(response)
