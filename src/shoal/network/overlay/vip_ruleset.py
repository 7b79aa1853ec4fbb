"""The nftables table that load-balances a task's connections to service VIPs. Pure.

In the task's own namespace, as Docker's IPVS (fwmark) does in a container's: a packet
for a VIP, any protocol and port, is DNATed to one of the service's running tasks, same
port, round robin (``numgen inc mod N``). The nat hook sees only a connection's first
packet; conntrack carries the choice for the rest, and the reply is un-NATed on its way
back in, so the task's socket sees the VIP answer.

- Output hook only: the connections come from the task itself. A VIP is looked up in one
  verdict map (``ip daddr vmap``), so the cost per new connection does not grow with the
  number of services.
- A VIP without running tasks is rejected (filter, output): TCP with a reset, anything
  else with ICMP port unreachable, so a client fails at once rather than waiting for an
  ARP reply for an address nobody holds. What the client sees is what IPVS gives (it
  drops such a packet in the output hook and sends port unreachable): TCP's connect is
  refused (ECONNREFUSED); a UDP send fails with EPERM, because a datagram dropped in the
  output hook fails its sendmsg (found by test). The filter hook runs after the nat one,
  and a connection DNATed before its service lost its tasks already carries its
  backend's address there, so only new connections are refused.
- A task that is a backend of the VIP it calls may be given itself: the DNAT to its own
  address turns into local delivery (checked by test).

The file replaces the table in one transaction (``table``, ``delete table``, the table):
the kernel switches from the old map to the new at once, established connections keep
their backend, and a change costs one ``nft`` process whatever it changes.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
# nft 1.0.6 accepts the "dstnat" priority keyword in prerouting only; -100 is its value.
_DSTNAT = -100


def _check_name(table: str) -> None:
    if not _NAME_RE.match(table):
        raise ValueError(f"invalid nftables table name {table!r}")


def chain_name(vip: str) -> str:
    return "vip-" + ipaddress.IPv4Address(vip).packed.hex()


def render(table: str, vips: Mapping[str, Iterable[str]]) -> str:
    """``vips``: VIP -> the addresses of its service's running tasks (order is not kept:
    backends are sorted, so equal sets render identically)."""
    _check_name(table)
    served: dict[str, list[str]] = {}
    empty: list[str] = []
    for vip, backends in sorted(vips.items(), key=lambda kv: ipaddress.IPv4Address(kv[0])):
        vip = str(ipaddress.IPv4Address(vip))
        addrs = sorted({str(ipaddress.IPv4Address(b)) for b in backends}, key=ipaddress.IPv4Address)
        if addrs:
            served[vip] = addrs
        else:
            empty.append(vip)
    out = [
        f"table ip {table} {{",
        "}",
        f"delete table ip {table}",
        f"table ip {table} {{",
        '\tcomment "shoal overlay: service VIPs"',
        "\tchain output {",
        f"\t\ttype nat hook output priority {_DSTNAT}; policy accept;",
    ]
    if served:
        entries = ", ".join(f"{vip} : goto {chain_name(vip)}" for vip in served)
        out.append(f"\t\tip daddr vmap {{ {entries} }}")
    out.append("\t}")
    for vip, addrs in served.items():
        spread = ", ".join(f"{i} : {a}" for i, a in enumerate(addrs))
        out += [
            f"\tchain {chain_name(vip)} {{",
            f"\t\tdnat to numgen inc mod {len(addrs)} map {{ {spread} }}",
            "\t}",
        ]
    if empty:
        dead = "{ " + ", ".join(empty) + " }"
        out += [
            "\tchain refuse {",
            "\t\ttype filter hook output priority filter; policy accept;",
            f"\t\tip daddr {dead} meta l4proto tcp reject with tcp reset",
            f"\t\tip daddr {dead} reject",
            "\t}",
        ]
    out += ["}", ""]
    return "\n".join(out)


def render_delete(table: str) -> str:
    _check_name(table)
    return f"table ip {table} {{\n}}\ndelete table ip {table}\n"
