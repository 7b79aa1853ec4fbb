"""Daemons on hosts of their own: each ``shoal daemon`` in a network namespace of a
``Testbed`` (tests/integration/network/netns.py), with that host's address, port 2377.

A daemon is entered with ``nsenter --net=`` (network namespace only), not ``ip netns exec``:
the latter gives it a mount namespace of its own, in which the namespaces it makes for its
overlay networks would be mounted where nothing outside it sees them.
"""

from __future__ import annotations

from pathlib import Path

from tests.e2e.harness import LocalCluster, Node
from tests.integration.network.netns import Testbed


class NetnsCluster(LocalCluster):
    def __init__(self, root: Path, bed: Testbed, daemon_args: list[str] | None = None) -> None:
        super().__init__(root)
        self.bed = bed
        self.daemon_args = daemon_args or []

    def add(self, name: str, extra_args: list[str] | None = None, wait: bool = True) -> Node:
        host = len(self.nodes) + 1
        node = Node(
            name=name,
            host=self.bed.addr(host),
            root=self.root / name,
            port=2377,  # every host has its own ports
            extra_args=[*self.daemon_args, *(extra_args or [])],
            wrap=["nsenter", f"--net=/run/netns/{self.bed.ns(host)}"],
        )
        self.nodes.append(node)
        node.spawn()
        if wait:
            node.wait_ready()
        return node
