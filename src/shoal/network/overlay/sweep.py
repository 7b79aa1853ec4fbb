"""Removing everything a node's overlay data plane made, found by its prefix: for a node
that leaves the swarm, and for tests that must leave nothing behind even after a crash.

Only the node's own namespace is looked at for links and tables (the gateway bridge, its
ports, the NAT table); named namespaces are machine-wide, and every one with the node's
prefix goes, sandboxes and task namespaces alike. Containers' namespaces are Docker's:
their interfaces on our networks went with our sandboxes' ends of the veth pairs.
"""

from __future__ import annotations

from shoal.network.overlay import namespaces, tools
from shoal.network.overlay.gateway import docker_user_rules
from shoal.network.overlay.gateway_plan import render_delete
from shoal.network.overlay.names import NodeNames
from shoal.network.overlay.observed import parse_links


async def sweep(names: NodeNames) -> list[str]:
    """Deletes what carries ``names.prefix``; returns what it deleted."""
    gone: list[str] = []
    for ns in namespaces.list_named(names.prefix + "-"):
        await namespaces.delete_named(ns)
        gone.append(f"netns {ns}")
    [doc] = await tools.show("ip", None, ["link show"])
    links = parse_links(doc)
    doomed = [n for n in links if names.gateway_port_address(n) is not None]
    if names.gateway_bridge in links:
        doomed.append(names.gateway_bridge)
    await tools.batch("ip", None, [f"link del {n}" for n in doomed])
    gone += [f"link {n}" for n in doomed]
    tables = await tools.run(["nft", "list", "tables", "ip"])
    if f"table ip {names.gateway_table}\n" in tables + "\n":
        await tools.nft(None, render_delete(names.gateway_table))
        gone.append(f"table ip {names.gateway_table}")
    await docker_user_rules(names, add=False)
    return gone
