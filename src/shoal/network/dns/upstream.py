"""The resolvers a node forwards the names it does not own to.

Given as ``ip`` or ``ip:port`` (``[v6]:port`` for IPv6), or read from the node's
``/etc/resolv.conf``. Every ``nameserver`` line counts, loopback ones included: Docker drops
loopback nameservers because its resolver forwards from the container's namespace, where
they mean nothing; ours forwards from the daemon's own namespace, where a local cache such
as systemd-resolved (127.0.0.53) answers as it does for the node itself. A resolv.conf
without nameservers means the local host, as it does to the C library.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

DNS_PORT = 53
RESOLV_CONF = Path("/etc/resolv.conf")


@dataclass(frozen=True)
class Upstream:
    host: str  # an IP address, IPv6 possibly with a %scope
    port: int = DNS_PORT

    def __post_init__(self) -> None:
        ipaddress.ip_address(self.host)  # raises ValueError on a name or garbage
        if not 0 < self.port < 65536:
            raise ValueError(f"invalid port {self.port}")

    @property
    def family(self) -> socket.AddressFamily:
        return socket.AF_INET6 if ":" in self.host else socket.AF_INET

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


# The C library's choice when resolv.conf names no nameserver.
LOCAL = (Upstream("127.0.0.1"),)


def parse_upstream(text: str) -> Upstream:
    """``10.0.0.2``, ``10.0.0.2:5353``, ``fd00::2``, ``[fd00::2]:5353``."""
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"invalid upstream {text!r}")
        return Upstream(host, int(rest[1:]) if rest else DNS_PORT)
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return Upstream(host, int(port))
    return Upstream(text)


def parse_upstreams(items: Iterable[str | Upstream]) -> tuple[Upstream, ...]:
    return tuple(u if isinstance(u, Upstream) else parse_upstream(u) for u in items)


def from_resolv_conf(text: str) -> tuple[Upstream, ...]:
    """The nameservers of a resolv.conf, in order; lines that are not an address are
    skipped, as the C library skips them."""
    found = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            try:
                found.append(Upstream(fields[1]))
            except ValueError:
                continue
    return tuple(found) or LOCAL


async def system_upstreams(path: Path = RESOLV_CONF) -> tuple[Upstream, ...]:
    """The node's own resolvers (read in a thread: it is a file)."""
    try:
        text = await asyncio.to_thread(path.read_text)
    except OSError:
        return LOCAL
    return from_resolv_conf(text)
