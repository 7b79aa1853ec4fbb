"""The node's gateway bridge, on paper: its subnet, the addresses of its ports, its
masquerade table. Pure.

The gateway bridge is Swarm's ``docker_gwbridge``: a bridge in the node's namespace that
gives each task on non-internal overlay networks a way out (default route, masqueraded
to the node's address), its ports isolated from each other as ``docker_gwbridge`` has
inter-container communication off (tasks talk over their overlay networks, not here).

Its subnet comes from 172.16.0.0/12, the first one that overlaps no route and no address
the node's namespace has (other nodes' gateway bridges on the same host included), and is
read back from the bridge after a restart. The addresses of its ports are derived from
what exists, not kept in a file: each port (the bridge end of a task's veth) is named
after its task's address (names.gateway_port), so the bridge's port list is the list of
addresses in use, right after a restart and right after a task namespace went away with
its veth.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from shoal.network.overlay.observed import Link, Route

POOL = "172.16.0.0/12"
GATEWAY_MTU = 1500


def choose_subnet(taken: Iterable[str], prefixlen: int, pool: str = POOL) -> str:
    """The first subnet of ``pool`` with ``prefixlen`` that overlaps nothing in ``taken``
    (CIDRs: routes' destinations, addresses with their prefix)."""
    used = [ipaddress.IPv4Network(t, strict=False) for t in taken]
    for candidate in ipaddress.IPv4Network(pool).subnets(new_prefix=prefixlen):
        if not any(candidate.overlaps(u) for u in used):
            return str(candidate)
    raise ValueError(f"no /{prefixlen} of {pool} is free on this node")


def taken_by(links: dict[str, Link], routes: list[Route]) -> list[str]:
    """What a gateway subnet must not overlap: the node's IPv4 addresses and the routes it
    has, except default routes, including those in disguise: routes shorter than /8, as a
    VPN's 0.0.0.0/1 and 128.0.0.0/1, which would otherwise overlap every candidate."""
    taken = [
        r.dst for r in routes if r.dst != "default" and ":" not in r.dst and _prefixlen(r.dst) >= 8
    ]
    for link in links.values():
        taken += list(link.addresses)
    return taken


def _prefixlen(dst: str) -> int:
    return int(dst.split("/")[1]) if "/" in dst else 32


def bridge_address(subnet: str) -> str:
    """The bridge's own address: the subnet's first, as a CIDR."""
    net = ipaddress.IPv4Network(subnet)
    return f"{net.network_address + 1}/{net.prefixlen}"


def bridge_commands(name: str, subnet: str, mtu: int = GATEWAY_MTU) -> list[str]:
    return [
        f"link add {name} mtu {mtu} type bridge",
        f"addr add {bridge_address(subnet)} dev {name}",
        f"link set {name} up",
    ]


def repair_commands(link: Link, mtu: int = GATEWAY_MTU) -> list[str]:
    out = []
    if link.mtu != mtu:
        out.append(f"link set {link.name} mtu {mtu}")
    if not link.up:
        out.append(f"link set {link.name} up")
    return out


def allocate(address_cidr: str, in_use: Iterable[str]) -> str:
    """The lowest free host address of the bridge's subnet (``address_cidr``: the bridge's
    own address with its prefix), as a CIDR."""
    bridge = ipaddress.IPv4Interface(address_cidr)
    used = {ipaddress.IPv4Address(a.split("/")[0]) for a in in_use} | {bridge.ip}
    for host in bridge.network.hosts():
        if host not in used:
            return f"{host}/{bridge.network.prefixlen}"
    raise ValueError(f"no free address left on {bridge.network}")


def render_table(table: str, bridge: str, subnet: str) -> str:
    """The ``nft -f`` input that (re)makes the gateway's table: what leaves the node from
    the bridge's subnet by another interface is masqueraded to that interface's address.
    One transaction, replacing the table (see nft_ruleset)."""
    subnet = str(ipaddress.IPv4Network(subnet))
    return "\n".join(
        [
            f"table ip {table} {{",
            "}",
            f"delete table ip {table}",
            f"table ip {table} {{",
            '\tcomment "shoal overlay: gateway bridge NAT"',
            "\tchain postrouting {",
            "\t\ttype nat hook postrouting priority srcnat; policy accept;",
            f'\t\tip saddr {subnet} oifname != "{bridge}" masquerade',
            "\t}",
            "}",
            "",
        ]
    )


def render_delete(table: str) -> str:
    return f"table ip {table} {{\n}}\ndelete table ip {table}\n"
