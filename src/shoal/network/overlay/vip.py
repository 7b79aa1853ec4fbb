"""Loading a task's VIP table (vip_ruleset) into its namespace, each time the backends of
a service the task reaches change: one transaction per change, replacing the table.

``VipTables`` keeps a libnftables context open per task namespace (see libnftables.py
for why: ~0.4 ms per replace instead of ~16 ms, and no machine-wide serialization), and
runs ``nft -f`` where the library cannot be loaded. ``forget`` a task's namespace when the
task ends: an open context holds its namespace alive. ``apply_vips`` and ``remove_vips``
are the one-shot ``nft -f`` versions, holding nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Literal

from shoal.network.overlay import libnftables, tools
from shoal.network.overlay.vip_ruleset import render, render_delete


async def apply_vips(task_netns_path: str, table: str, vips: Mapping[str, Iterable[str]]) -> None:
    """Replaces the task's VIP table with one for ``vips`` (VIP -> backend addresses)."""
    await tools.nft(task_netns_path, render(table, vips))


async def remove_vips(task_netns_path: str, table: str) -> None:
    """Deletes the table (a namespace that goes away takes its tables with it anyway)."""
    await tools.nft(task_netns_path, render_delete(table))


class VipTables:
    """The VIP tables of a node's tasks, all named ``table``."""

    def __init__(self, table: str, engine: Literal["auto", "library", "nft"] = "auto") -> None:
        render_delete(table)  # checks the name
        self.table = table
        if engine == "library" and libnftables.library() is None:
            raise tools.ToolError(f"libnftables is not available: {libnftables.why_not()}")
        self.engine: Literal["library", "nft"] = (
            "nft" if engine == "nft" or libnftables.library() is None else "library"
        )
        self._contexts: dict[str, libnftables.NftContext] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def apply(self, task_netns_path: str, vips: Mapping[str, Iterable[str]]) -> None:
        """Replaces the task's VIP table with one for ``vips`` (VIP -> backend addresses)."""
        await self._run(task_netns_path, render(self.table, vips))

    async def remove(self, task_netns_path: str) -> None:
        """Deletes the task's table and forgets its namespace."""
        await self._run(task_netns_path, render_delete(self.table))
        await self.forget(task_netns_path)

    async def forget(self, task_netns_path: str) -> None:
        """Lets go of the task's namespace (its context), without touching its table."""
        async with self._lock(task_netns_path):
            ctx = self._contexts.pop(task_netns_path, None)
            if ctx is not None:
                await asyncio.to_thread(ctx.close)
        self._locks.pop(task_netns_path, None)

    async def close(self) -> None:
        for path in list(self._contexts):
            await self.forget(path)

    def _lock(self, path: str) -> asyncio.Lock:
        return self._locks.setdefault(path, asyncio.Lock())

    async def _run(self, path: str, script: str) -> None:
        if self.engine == "nft":
            await tools.nft(path, script)
            return
        async with self._lock(path):
            ctx = self._contexts.get(path)
            if ctx is not None and ctx.ns_id != libnftables.namespace_id(path):
                # The path names another namespace now: the old context would write into
                # a namespace that is gone.
                await asyncio.to_thread(ctx.close)
                ctx = None
            if ctx is None:
                ctx = await libnftables.open_context(path)
                self._contexts[path] = ctx
            await ctx.run(script)
