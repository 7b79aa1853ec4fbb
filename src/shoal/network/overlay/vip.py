"""Loading a task's VIP table (vip_ruleset) into its namespace: one ``nft`` process, one
transaction, each time the backends of a service the task reaches change."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from shoal.network.overlay import tools
from shoal.network.overlay.vip_ruleset import render, render_delete


async def apply_vips(task_netns_path: str, table: str, vips: Mapping[str, Iterable[str]]) -> None:
    """Replaces the task's VIP table with one for ``vips`` (VIP -> backend addresses)."""
    await tools.nft(task_netns_path, render(table, vips))


async def remove_vips(task_netns_path: str, table: str) -> None:
    """Deletes the table (a namespace that goes away takes its tables with it anyway)."""
    await tools.nft(task_netns_path, render_delete(table))
