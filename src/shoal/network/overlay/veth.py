"""Converging one veth attachment (see veth_plan) and removing one: the I/O side."""

from __future__ import annotations

import asyncio

from shoal.network.overlay import tools
from shoal.network.overlay.observed import parse_links, parse_routes
from shoal.network.overlay.veth_plan import VethPlan, VethSpec, plan_veth


async def converge_veth(spec: VethSpec, outer_netns: tools.Netns) -> VethPlan:
    """Makes ``spec`` true; ``outer_netns`` holds the bridge (None: the node's namespace).
    Returns what it ran (empty: the attachment was already right)."""
    inner_cmds = ["addr show", *(["route show"] if spec.default_via else [])]
    inner_docs, (outer_doc,) = await asyncio.gather(
        tools.show("ip", spec.inner_path, inner_cmds, details=True),
        tools.show("ip", outer_netns, ["link show"], details=True),
    )
    plan = plan_veth(
        spec,
        parse_links(inner_docs[0]),
        parse_links(outer_doc),
        parse_routes(inner_docs[1]) if spec.default_via else None,
    )
    await tools.batch("ip", spec.inner_path, plan.inner_first)
    await tools.batch("ip", outer_netns, plan.outer)
    await tools.batch("ip", spec.inner_path, plan.inner)
    return plan


async def delete_interface(netns: str, ifname: str) -> bool:
    """Deletes ``ifname`` in ``netns`` (a veth: its peer goes with it); False if absent."""
    [doc] = await tools.show("ip", netns, ["link show"])
    if ifname not in parse_links(doc):
        return False
    await tools.batch("ip", netns, [f"link del {ifname}"])
    return True
