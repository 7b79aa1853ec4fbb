"""The kernel data path: nftables DNAT, driven through the ``nft`` tool.

Why ``nft -f -`` rather than the ``nftables`` Python bindings: the bindings are
libnftables through ctypes, shipped by the distribution (Debian's python3-nftables) for
the system Python only and not on PyPI, so a virtualenv or another Python cannot import
them; they would take the same text (or JSON) as ``nft -f`` anyway. The tool is one
short-lived process per change (a few milliseconds), and each file is applied as one
atomic netlink transaction.

Connections to loopback (and IPv6) node addresses cannot be served by DNAT without
loosening the host (see nft_ruleset), so this data path runs a userspace proxy for those
addresses alongside the rules.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path

from shoal.errors import Unavailable
from shoal.network.datapath import DataPathName, MeshConfig
from shoal.network.nft_ruleset import Ruleset, kernel_address, render, render_delete
from shoal.network.routing import EMPTY, RoutingTable, diff_tables
from shoal.network.userspace import UserspaceDataPath

log = logging.getLogger(__name__)

IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


class NftError(Unavailable):
    pass


async def run_nft(script: str, *args: str, nft: str = "nft") -> str:
    proc = await asyncio.create_subprocess_exec(
        nft,
        *args,
        "-f",
        "-",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(script.encode())
    if proc.returncode != 0:
        raise NftError(f"nft failed: {err.decode(errors='replace').strip()}")
    return out.decode()


def assist_addresses(addresses: list[str] | None) -> list[str] | None:
    """The node addresses the rules cannot serve, for the userspace proxy: loopback and
    IPv6. With every address of the host (None), those are 127.0.0.1 and IPv6's wildcard."""
    if addresses is None:
        return ["127.0.0.1", "::"] if _has_ipv6() else ["127.0.0.1"]
    return [a for a in addresses if not kernel_address(a)]


class NftablesDataPath:
    name: DataPathName = "nftables"

    def __init__(
        self, config: MeshConfig, reason: str = "forced by configuration", nft: str = "nft"
    ) -> None:
        self.config = config
        self.reason = reason
        self._nft = nft
        self._table = EMPTY
        self._errors: dict[str, str] = {}
        self._lock = asyncio.Lock()
        self._started = False
        assist = assist_addresses(config.addresses)
        self._assist = (
            UserspaceDataPath(_with_addresses(config, assist), "loopback and IPv6 addresses")
            if assist
            else None
        )

    @property
    def table(self) -> RoutingTable:
        return self._table

    @property
    def errors(self) -> dict[str, str]:
        errors = dict(self._errors)
        if self._assist is not None:
            for port, e in self._assist.errors.items():
                errors.setdefault(port, f"loopback/IPv6 proxy: {e}")
        return errors

    @property
    def assist(self) -> UserspaceDataPath | None:
        return self._assist

    async def start(self) -> None:
        async with self._lock:
            # Replacing the table also clears one left behind by a daemon that crashed.
            await run_nft(self._render(EMPTY).text, nft=self._nft)
            self._started = True
            await asyncio.to_thread(_enable_ip_forward)
            if self._assist is not None:
                await self._assist.start()

    async def apply(self, table: RoutingTable) -> None:
        async with self._lock:
            if not self._started:
                raise RuntimeError("apply before start")
            ruleset = self._render(table)
            if table != self._table:
                await run_nft(ruleset.text, nft=self._nft)
                await self._forget_udp_flows(self._table, table)
            self._errors = ruleset.errors
            self._table = table
        if self._assist is not None:
            await self._assist.apply(table)

    async def stop(self) -> None:
        async with self._lock:
            if self._assist is not None:
                await self._assist.stop()
            if self._started:
                await run_nft(render_delete(self.config.nft_table), nft=self._nft)
                self._started = False
            self._table = EMPTY
            self._errors = {}

    def _render(self, table: RoutingTable) -> Ruleset:
        return render(table, self.config.addresses, self.config.nft_table, self.config.nft_mark)

    async def _forget_udp_flows(self, old: RoutingTable, new: RoutingTable) -> None:
        """UDP conntrack entries outlive their backend (no FIN, just a timeout) and would
        keep sending a client's datagrams to a removed task: delete them, as kube-proxy
        does, when the conntrack tool is there."""
        conntrack = shutil.which("conntrack")
        if conntrack is None:
            return
        diff = diff_tables(old, new)
        gone: list[tuple[int, str, int]] = []
        for route in diff.removed:
            if route.protocol == "udp":
                gone += [(route.port, b.addr, b.port) for b in route.backends]
        for before, after in diff.changed:
            if before.protocol == "udp":
                kept = set(after.backends)
                gone += [(before.port, b.addr, b.port) for b in before.backends if b not in kept]
        for port, addr, bport in gone:
            proc = await asyncio.create_subprocess_exec(
                conntrack,
                "-D",
                "-p",
                "udp",
                "--orig-port-dst",
                str(port),
                "--reply-src",
                addr,
                "--reply-port-src",
                str(bport),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            await proc.wait()


def _with_addresses(config: MeshConfig, addresses: list[str]) -> MeshConfig:
    return MeshConfig(
        data_path="userspace",
        addresses=addresses,
        nft_table=config.nft_table,
        nft_mark=config.nft_mark,
        udp_idle_timeout=config.udp_idle_timeout,
        connect_timeout=config.connect_timeout,
        clock=config.clock,
    )


def _enable_ip_forward() -> None:
    """Connections from other hosts to a task on a third host are forwarded by this node.
    Like Docker and kube-proxy, we turn forwarding on and leave it on at stop: another
    node or Docker in the same network namespace may rely on it by then."""
    try:
        if IP_FORWARD.read_text().strip() != "1":
            IP_FORWARD.write_text("1\n")
    except OSError as e:
        log.warning("cannot enable IPv4 forwarding (%s): other hosts' tasks unreachable", e)


def _has_ipv6() -> bool:
    import socket

    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False
