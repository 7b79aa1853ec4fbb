"""Choosing subnets, VXLAN IDs and addresses, as Swarm's allocator chooses them. Pure: the
callers say what is taken (read from the store), so nothing here has to be rebuilt after a
restart or a change of leader.

Swarm allocates serially: the next subnet, ID or address after the last one handed out, going
round to the lowest free one at the end, so that one just given up is not handed out again
at once (a client or a DNS cache may still hold it). With no memory of "last", the highest
taken stands in for it.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Iterable
from dataclasses import dataclass

from shoal.errors import InvalidArgument

IPv4Net = ipaddress.IPv4Network
IPv4Addr = ipaddress.IPv4Address

# VXLAN network identifiers: Swarm's ingress takes the first, user networks count up from it.
VNI_FIRST = 4096
VNI_LAST = (1 << 24) - 1


class PoolExhausted(InvalidArgument):
    pass


def parse_subnet(text: str) -> IPv4Net:
    """A subnet as Docker 28 words its refusal ("invalid subnet X: invalid CIDR block
    notation"); the host bits must be zero."""
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError:
        raise InvalidArgument(
            f"invalid network config:\ninvalid subnet {text}: invalid CIDR block notation"
        ) from None
    if not isinstance(net, IPv4Net):
        raise InvalidArgument(
            f"invalid network config:\ninvalid subnet {text}: IPv6 is not supported"
        )
    return net


DEFAULT_DATA_PATH_PORT = 4789
DATA_PATH_PORT_MIN = 1024
DATA_PATH_PORT_MAX = 49151


def check_default_addr_pool(pools: list[str] | None, size: int) -> None:
    """``swarm init --default-addr-pool``/``--default-addr-pool-mask-length``, with Docker's
    refusals."""
    if not 0 < size <= 32:
        raise InvalidArgument(f"subnet size is out of range: {size}")
    for text in pools or ():
        try:
            pool = ipaddress.IPv4Network(text, strict=False)
        except ValueError:
            raise InvalidArgument(f'invalid CIDR: "{text}"') from None
        if size < pool.prefixlen:
            raise InvalidArgument(
                f'invalid CIDR: "{text}". Subnet size is too small for pool: {size}'
            )


def check_data_path_port(port: int) -> None:
    if not DATA_PATH_PORT_MIN <= port <= DATA_PATH_PORT_MAX:
        raise InvalidArgument(
            f"Datapath port number is not in valid range "
            f"({DATA_PATH_PORT_MIN}-{DATA_PATH_PORT_MAX}) : {port}"
        )


def next_subnet(pools: Iterable[IPv4Net], size: int, taken: Iterable[IPv4Net]) -> IPv4Net:
    """The first /``size`` of the pools that overlaps nothing taken, after the highest one
    taken within the pools; wrapping round to the lowest."""
    pools = [p for p in pools if size >= p.prefixlen]
    taken = list(taken)
    in_pools = [t for t in taken if any(t.subnet_of(p) for p in pools)]
    last = max((int(t.network_address) for t in in_pools), default=-1)

    def free(after: int | None) -> IPv4Net | None:
        for pool in pools:
            for candidate in _subnets(pool, size, after):
                if not any(candidate.overlaps(t) for t in taken):
                    return candidate
        return None

    found = free(last) or free(None)
    if found is None:
        raise PoolExhausted("could not find an available, non-overlapping IPv4 address pool")
    return found


def _subnets(pool: IPv4Net, size: int, after: int | None) -> Iterable[IPv4Net]:
    """The pool's /``size`` subnets in order, those starting after ``after`` only if given
    (lazily: 10.0.0.0/8 holds 65,536 of /24)."""
    step = 1 << (32 - size)
    first = int(pool.network_address)
    end = int(pool.broadcast_address) + 1
    if after is not None:
        first = max(first, (after // step + 1) * step)
    for start in range(first, end, step):
        yield IPv4Net((start, size))


def next_vni(taken: Iterable[int]) -> int:
    """The VXLAN ID after the highest taken (from 4096), or the lowest free one."""
    used = set(taken)
    start = max(used) + 1 if used else VNI_FIRST
    # Lazily: the range holds 16 million IDs, and a tuple of them took seconds to build.
    for vni in itertools.chain(range(max(start, VNI_FIRST), VNI_LAST + 1), range(VNI_FIRST, start)):
        if vni not in used:
            return vni
    raise PoolExhausted("no free VXLAN ID left")


@dataclass(frozen=True)
class AddressSpace:
    """The addresses of one network: its subnet, the part of it addresses are given from
    (``--ip-range``; the whole subnet otherwise), and its gateway."""

    subnet: IPv4Net
    gateway: IPv4Addr
    pool: IPv4Net

    @classmethod
    def of(cls, subnet: str, gateway: str | None, ip_range: str | None) -> AddressSpace:
        net = ipaddress.IPv4Network(subnet)
        pool = ipaddress.IPv4Network(ip_range) if ip_range else net
        gw = ipaddress.IPv4Address(gateway) if gateway else first_host(net)
        return cls(net, gw, pool)

    def cidr(self, addr: IPv4Addr) -> str:
        """``10.0.1.3/24``: how Swarm writes a VIP or a task's address."""
        return f"{addr}/{self.subnet.prefixlen}"

    def next_free(self, taken: set[IPv4Addr]) -> IPv4Addr:
        """The address after the highest taken, or the lowest free one; never the network's
        own address, its broadcast address or the gateway."""
        low = int(self.pool.network_address)
        high = int(self.pool.broadcast_address)
        if self.pool.prefixlen < 31:
            low, high = low + 1, high - 1
        reserved = {self.gateway, self.subnet.network_address, self.subnet.broadcast_address}
        used = {int(a) for a in taken | reserved if low <= int(a) <= high}
        busy = {int(a) for a in taken if low <= int(a) <= high}
        start = max(busy) + 1 if busy else low
        for n in (*range(start, high + 1), *range(low, start)):
            if n not in used:
                return IPv4Addr(n)
        raise PoolExhausted(f"could not find an available IP in network {self.subnet}")


def first_host(net: IPv4Net) -> IPv4Addr:
    return next(net.hosts()) if net.prefixlen < 31 else net.network_address


def address_of(cidr: str) -> IPv4Addr:
    """The address of ``10.0.1.3/24``."""
    return ipaddress.IPv4Interface(cidr).ip
