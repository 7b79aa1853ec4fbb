"""The nftables ruleset of the kernel data path, as text for ``nft -f``. Pure: no I/O.

Shaped like kube-proxy's nftables mode: one table of our own (family ip), NAT base chains
in prerouting (connections from other hosts) and output (connections made on this node),
one verdict map from (protocol, published port) to a chain per port, and in that chain a
DNAT to ``numgen inc mod N`` over the backends: round robin, so successive connections go
to successive tasks (the spread Swarm users see). Packets we DNAT carry a mark; in
postrouting, marked packets leaving by an interface other than ``lo`` are masqueraded, so
that a backend on another host replies through this node (which un-NATs the reply).

Loopback, found by experiment (kernel 6.x):
- DNAT from a 127.x destination to another 127.x backend works from the output hook, but
  only if the packet is not masqueraded on ``lo`` (masquerade there makes the connection
  time out); hence ``oifname != "lo"``.
- DNAT from a 127.x destination to a backend on another host needs the sysctl
  ``route_localnet`` (packets from 127.x may not leave ``lo`` otherwise), which also lets
  other hosts reach 127.x services (CVE-2020-8558). We don't set it: the kernel path
  serves non-loopback IPv4 addresses only, and the data path hands loopback (and IPv6)
  addresses to a userspace proxy.
- A backend on a loopback address is unreachable for connections DNATed in prerouting
  (martian destination), so loopback backends are left out and reported.

The file replaces the table in one transaction: ``table`` (creates it if missing),
``delete table``, then the full table. ``nft -f`` sends all of it as one netlink batch, so
the kernel switches from the old rules to the new ones atomically; connections already
established keep their NAT mapping in conntrack whatever the rules become.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from shoal.network.routing import Backend, PortRoute, RoutingTable

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")

# nft 1.0.6 accepts the "dstnat" priority keyword in prerouting only; -100 is its value.
_DSTNAT = -100


def kernel_address(addr: str) -> bool:
    """Whether the kernel path can serve connections to this node address."""
    ip = ipaddress.ip_address(addr)
    return ip.version == 4 and not ip.is_loopback and not ip.is_unspecified


def kernel_backend(backend: Backend) -> bool:
    ip = ipaddress.ip_address(backend.addr)
    return ip.version == 4 and not ip.is_loopback and not ip.is_unspecified


@dataclass
class Ruleset:
    text: str
    # Ports the rules leave out, and why (e.g. only loopback or IPv6 backends).
    errors: dict[str, str] = field(default_factory=dict)


def chain_name(route: PortRoute) -> str:
    return f"port-{route.protocol}-{route.port}"


def render(
    table: RoutingTable,
    addresses: Sequence[str] | None,
    table_name: str = "shoal",
    mark: int = 0x4000,
) -> Ruleset:
    """The ``nft -f`` input that makes table ``ip <table_name>`` serve ``table``.

    ``addresses``: the node addresses to serve; None means every local address of the host
    except loopback. Addresses the kernel path cannot serve are ignored here.
    """
    if not _NAME_RE.match(table_name):
        raise ValueError(f"invalid nftables table name {table_name!r}")
    if not 0 < mark < 2**32:
        raise ValueError(f"invalid mark {mark:#x}")
    errors: dict[str, str] = {}
    served: list[tuple[PortRoute, list[Backend]]] = []
    for route in table:
        usable = [b for b in route.backends if kernel_backend(b)]
        left_out = [b for b in route.backends if not kernel_backend(b)]
        if left_out:
            errors[str(route)] = "backends on loopback or IPv6 addresses left out: " + ", ".join(
                str(b) for b in left_out
            )
        if usable:
            served.append((route, usable))

    out: list[str] = [
        f"table ip {table_name} {{\n}}",
        f"delete table ip {table_name}",
        f"table ip {table_name} {{",
        '\tcomment "shoal routing mesh: published ports"',
    ]
    kernel_addrs = None if addresses is None else [a for a in addresses if kernel_address(a)]
    if kernel_addrs:
        out += [
            "\tset addresses {",
            "\t\ttype ipv4_addr",
            "\t\telements = { " + ", ".join(kernel_addrs) + " }",
            "\t}",
        ]
    out += [
        "\tchain prerouting {",
        "\t\ttype nat hook prerouting priority dstnat; policy accept;",
        "\t\tjump published",
        "\t}",
        "\tchain output {",
        f"\t\ttype nat hook output priority {_DSTNAT}; policy accept;",
        "\t\tjump published",
        "\t}",
        "\tchain postrouting {",
        "\t\ttype nat hook postrouting priority srcnat; policy accept;",
        f'\t\tmeta mark & {mark:#x} == {mark:#x} oifname != "lo" masquerade',
        "\t}",
        "\tchain published {",
    ]
    if served and kernel_addrs != []:
        if kernel_addrs is None:
            match = "ip daddr != 127.0.0.0/8 fib daddr type local"
        else:
            match = "ip daddr @addresses"
        entries = ", ".join(f"{r.protocol} . {r.port} : goto {chain_name(r)}" for r, _ in served)
        out.append(f"\t\t{match} meta l4proto . th dport vmap {{ {entries} }}")
    out.append("\t}")
    for route, backends in served:
        spread = ", ".join(f"{i} : {b.addr} . {b.port}" for i, b in enumerate(backends))
        out += [
            f"\tchain {chain_name(route)} {{",
            f'\t\tcomment "service {_quote(route.service_id)}"',
            f"\t\tmeta mark set meta mark | {mark:#x}",
            f"\t\tmeta l4proto {route.protocol} dnat ip to numgen inc mod {len(backends)} "
            f"map {{ {spread} }}",
            "\t}",
        ]
    out.append("}")
    return Ruleset("\n".join(out) + "\n", errors)


def render_delete(table_name: str = "shoal") -> str:
    """Removes the table whether or not it exists (nft 1.0.6 has no ``destroy``)."""
    if not _NAME_RE.match(table_name):
        raise ValueError(f"invalid nftables table name {table_name!r}")
    return f"table ip {table_name} {{\n}}\ndelete table ip {table_name}\n"


def _quote(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.:/-]", "_", s)[:100]
