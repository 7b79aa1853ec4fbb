"""Answers already rendered, sent again to the same question from the same networks.

Rendering is most of what an answer costs: dnspython writes each record through its
general name-compression path, about 6 us a record, so ``tasks.<service>`` with 20 tasks
costs 125 us to render against 15 us to parse the query and 40 us to decide. And tasks
ask the same few names over and over: a container's stub resolver keeps no cache. So the
server keeps the wire form of the answers it renders, keyed by the query's bytes (all but
its ID: flags, question and EDNS as the client sent them), the transport, and the asker's
networks; a hit is the stored answer with the query's ID, without parsing the query.

Same bytes from a task on the same records, same answer: ``decide`` depends on nothing
else, but for the order of the addresses. That order must still change from answer to
answer so that clients spread over the tasks: an entry keeps the N rotations of its
answer's addresses, and each hit takes one at random (rendered the first time it is
drawn), so each address comes first in 1/N of the answers.

The records are the ``NetworkRecords`` objects ``who`` returned, by identity: records are
values, built anew when the network map changes, so an entry made from old records is
never found for new ones. Entries are dropped when any of their records is garbage
collected (they hold them weakly) and beyond ``size``, least recently used first. Pure
logic: the server passes in the random source and calls ``get`` and ``put``.
"""

from __future__ import annotations

import random
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import dns.message

from shoal.network.dns.records import NetworkRecords
from shoal.network.dns.resolver import encode, rotations

DEFAULT_SIZE = 4096
Key = tuple[tuple[int, ...], bool, bytes]


@dataclass
class _Entry:
    message: dns.message.Message  # as decide() answered the first query
    limit: int
    wires: list[bytes | None] = field(default_factory=list)  # per rotation, once rendered


class AnswerCache:
    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[Key, _Entry] = OrderedDict()
        self._watched: dict[int, weakref.finalize] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(
        self,
        wire: bytes,
        tcp: bool,
        networks: Sequence[NetworkRecords],
        rng: random.Random,
    ) -> bytes | None:
        """The answer to the query ``wire``, if one is stored, with the query's ID."""
        key = _key(wire, tcp, networks)
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(key)
        i = rng.randrange(len(entry.wires)) if len(entry.wires) > 1 else 0
        rendered = entry.wires[i]
        if rendered is None:
            rendered = entry.wires[i] = encode(entry.message, entry.limit, i)
        return wire[:2] + rendered[2:]

    def put(
        self,
        wire: bytes,
        tcp: bool,
        networks: Sequence[NetworkRecords],
        message: dns.message.Message,
        limit: int,
        rendered: bytes,
    ) -> None:
        """Keep ``message``, the answer to the query ``wire`` (``rendered`` as it was sent:
        its rotation 0)."""
        if self.size <= 0:
            return
        key = _key(wire, tcp, networks)
        entry = _Entry(message, limit, [None] * rotations(message))
        entry.wires[0] = rendered
        self._entries[key] = entry
        self._entries.move_to_end(key)
        for net in networks:
            if id(net) not in self._watched:
                # Through a weak reference: records outliving the cache do not keep it.
                self._watched[id(net)] = weakref.finalize(net, _forget, weakref.ref(self), id(net))
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

    def _forget(self, net_id: int) -> None:
        """The records ``net_id`` are gone: so are the answers made from them (before the
        id can be another object's)."""
        self._watched.pop(net_id, None)
        for key in [k for k in self._entries if net_id in k[0]]:
            del self._entries[key]


def _forget(cache: weakref.ref[AnswerCache], net_id: int) -> None:
    alive = cache()
    if alive is not None:
        alive._forget(net_id)


def _key(wire: bytes, tcp: bool, networks: Sequence[NetworkRecords]) -> Key:
    return (tuple(map(id, networks)), tcp, wire[2:])
