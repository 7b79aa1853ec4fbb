"""Two nodes on one host making their gateway bridges at the same moment (a local cluster
starting its first tasks): each must get a subnet of its own, or one node's tasks would
reach the outside, and be reached from their published ports, through the other's bridge.

Runs in the machine's own namespace, on a pool of test addresses; needs root.
"""

from __future__ import annotations

import asyncio
import ipaddress
import uuid

import pytest

from shoal.network.overlay import GatewayBridge, NodeNames, sweep
from tests.integration.network.netns import why_no_netns, why_no_nft

WHY_NOT = why_no_netns() or why_no_nft()
pytestmark = [pytest.mark.netns, pytest.mark.skipif(WHY_NOT is not None, reason=str(WHY_NOT))]


async def test_nodes_sharing_a_host_choose_different_subnets() -> None:
    tag = uuid.uuid4().hex[:4]
    names = [NodeNames(f"h{tag}{i}") for i in range(3)]
    bridges = [GatewayBridge(n, pool="172.29.0.0/16", prefixlen=24) for n in names]
    try:
        addresses = await asyncio.gather(*(b.ensure() for b in bridges))
        subnets = [ipaddress.IPv4Interface(a).network for a in addresses]
        assert len(set(subnets)) == 3, subnets
    finally:
        for n in names:
            await sweep(n)
