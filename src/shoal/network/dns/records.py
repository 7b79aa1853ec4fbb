"""What one overlay network's resolver knows: the names on the network and their addresses.

The node builds a ``NetworkRecords`` per overlay network from plain data out of the
managers' network map (services, their endpoint mode and VIP, aliases, running tasks) and
hands the resolver, per asking task, the records of the networks that task is on. Names
follow Docker's embedded DNS in swarm mode:

- ``<service>`` and each service alias: the VIP in ``vip`` mode, every running task's
  address in ``dnsrr`` mode (and in ``vip`` mode while the service has no VIP yet, as
  Docker falls back to DNS round robin then);
- ``tasks.<service>`` and ``tasks.<alias>``: every running task's address;
- each task name (``web.1.<task id>``) and task alias: that task's address;
- PTR: a task address -> ``<task name>.<network>``, a VIP -> ``<service>.<network>``.

Within one network a name's addresses are the union of everything that claims it (as in
Docker's table of names, where a task alias may repeat a service alias). Across the asking
task's networks the first network, in the task's order, that knows the name answers; a name
may also be qualified with a network's name (``web.backend``), which asks that network only.

Names are case-insensitive and the trailing dot is optional. A known name with no address
(a service with no running task) is still ours: the resolver answers it with no address
rather than sending it upstream (see resolver.py). Pure logic.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
EndpointMode = Literal["vip", "dnsrr"]
ENDPOINT_MODES: tuple[EndpointMode, ...] = ("vip", "dnsrr")


def parse_address(text: str) -> Address:
    """An address as the network map gives it: plain (``10.0.1.3``) or with its prefix
    length, as Swarm stores task and VIP addresses (``10.0.1.3/24``)."""
    # Records of a big network parse tens of thousands of these, on every change: IPv4 by
    # the C library's inet_pton, five times faster than ipaddress's own parser (and than
    # ip_interface, which builds the network too); anything else by ipaddress.
    host = text.partition("/")[0]
    try:
        return ipaddress.IPv4Address(socket.inet_pton(socket.AF_INET, host))
    except OSError:
        return ipaddress.ip_address(host)


def normalize(name: str) -> str:
    """The key a name is looked up by: lower case, no trailing dot."""
    return name.rstrip(".").lower()


@dataclass(frozen=True)
class TaskEntry:
    """One running task of a service, on this network."""

    name: str  # web.1.<task id>, as Swarm names the task's container
    address: str  # its address on this network, with or without /prefix
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServiceEntry:
    """One service attached to this network, with its running tasks on it."""

    name: str
    endpoint_mode: EndpointMode = "vip"
    vip: str | None = None  # its VIP on this network, with or without /prefix
    aliases: tuple[str, ...] = ()
    tasks: tuple[TaskEntry, ...] = ()

    def __post_init__(self) -> None:
        if self.endpoint_mode not in ENDPOINT_MODES:
            raise ValueError(f"unknown endpoint mode {self.endpoint_mode!r}")


@dataclass(frozen=True)
class NetworkRecords:
    """The names one network's resolver answers. Build with ``NetworkRecords.build``."""

    name: str
    # normalized name -> its addresses, in the order they were claimed, without repeats;
    # an empty tuple is a name we own with no address right now
    names: Mapping[str, tuple[Address, ...]] = field(default_factory=dict)
    # address -> the name its PTR record points to (no trailing dot)
    pointers: Mapping[Address, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return normalize(self.name)

    @classmethod
    def build(cls, network: str, services: Iterable[ServiceEntry]) -> NetworkRecords:
        # name -> its addresses as the keys of a dict: in order, without repeats, in
        # constant time per address (a list would be quadratic in a service's tasks)
        names: dict[str, dict[Address, None]] = {}
        pointers: dict[Address, str] = {}

        def claim(name: str, addresses: Iterable[Address]) -> None:
            key = normalize(name)
            have = names.get(key)
            if have is None:
                names[key] = dict.fromkeys(addresses)
            else:
                have.update(dict.fromkeys(addresses))

        for svc in services:
            tasks = [(t, parse_address(t.address)) for t in svc.tasks]
            task_addrs = [a for _, a in tasks]
            vip = parse_address(svc.vip) if svc.vip is not None else None
            answer = [vip] if svc.endpoint_mode == "vip" and vip is not None else task_addrs
            for name in (svc.name, *svc.aliases):
                claim(name, answer)
                claim(f"tasks.{name}", task_addrs)
            for task, addr in tasks:
                for name in (task.name, *task.aliases):
                    claim(name, [addr])
                pointers.setdefault(addr, f"{task.name}.{network}")
            if vip is not None:
                pointers.setdefault(vip, f"{svc.name}.{network}")
        return cls(network, {n: tuple(a) for n, a in names.items()}, pointers)


def lookup_name(networks: Sequence[NetworkRecords], name: str) -> tuple[Address, ...] | None:
    """The addresses of ``name`` for a task on ``networks`` (in the task's order), or None
    when the name is none of ours. Tried as Docker tries ``a.b.c``: the whole name on every
    network first, then ``a.b`` on the network named ``c``, then ``a`` on ``b.c``."""
    key = normalize(name)
    for net in networks:
        found = net.names.get(key)
        if found is not None:
            return found
    dot = len(key)
    while (dot := key.rfind(".", 0, dot)) > 0:
        network, short = key[dot + 1 :], key[:dot]
        for net in networks:
            if net.key == network:
                found = net.names.get(short)
                if found is not None:
                    return found
    return None


def lookup_address(networks: Sequence[NetworkRecords], address: Address) -> str | None:
    """The name a PTR query for ``address`` answers, from the first of ``networks`` that
    knows the address, or None."""
    for net in networks:
        found = net.pointers.get(address)
        if found is not None:
            return found
    return None
