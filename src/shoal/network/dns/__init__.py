"""Service discovery by DNS on overlay networks: the resolver each node serves to its tasks.

- records.py: what one network's resolver knows (``NetworkRecords``), from the network map;
- resolver.py: what to do with one query: ``Answer`` or ``Forward`` (pure);
- upstream.py: the node's own resolvers, to forward other names to;
- forwarder.py: relaying a query to them (I/O);
- server.py: ``DnsServer``, serving UDP and TCP on the sockets the node opens in its
  network sandboxes, asking ``who(source address)`` which networks' records apply.
"""

from shoal.network.dns.records import NetworkRecords, ServiceEntry, TaskEntry
from shoal.network.dns.resolver import Answer, Forward, decide
from shoal.network.dns.server import DnsServer
from shoal.network.dns.upstream import Upstream

__all__ = [
    "Answer",
    "DnsServer",
    "Forward",
    "NetworkRecords",
    "ServiceEntry",
    "TaskEntry",
    "Upstream",
    "decide",
]
