"""The overlay data plane of one node on its own, for tests and trying things by hand.

    nsenter --net=/run/netns/HOST python -m shoal.network.overlay.tool \\
        --prefix n1 --port 4789 --local 198.18.0.1

reads one JSON command per line on standard input and answers each with one JSON line,
{"ok": true, ...} or {"error": "..."}:

    {"op": "ensure", "network": {"id", "name", "subnet", "gateway", "vni", ["internal", "mtu"]}}
    {"op": "set_peers", "network": ID, "peers": [{"address", "node", ["port"]}]}
    {"op": "remove", "network": ID}
    {"op": "task_ns", "name": NAME}                  -> {"path": ...}
    {"op": "remove_task_ns", "name": NAME}
    {"op": "attach", "netns": PATH, "network": ID, "ifname": "eth0", "address": "10.0.1.3"}
    {"op": "detach", "netns": PATH, "ifname": "eth0"}
    {"op": "gateway"}                                -> {"address": "172.16.0.1/16"}
    {"op": "attach_gateway", "netns": PATH, "ifname": "eth1", ["address"]}
    {"op": "detach_gateway", "netns": PATH, "ifname": "eth1"}
    {"op": "remove_gateway"}
    {"op": "vips", "netns": PATH, "vips": {VIP: [address, ...]}}
    {"op": "forget_vips", "netns": PATH}             (lets go of the namespace's context)
    {"op": "present"}                                -> {"networks": [...]}
    {"op": "sweep"}                                  -> {"gone": [...]}

Leaves everything in place when it ends (at end of input, or killed): a node that stops
is not a node that leaves, and the next run adopts what it finds ("sweep" removes it all).
Run it in a network namespace with ``nsenter --net=``, not ``ip netns exec`` (see
namespaces.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from shoal.network.overlay.endpoints import TaskEndpoints
from shoal.network.overlay.gateway import GatewayBridge
from shoal.network.overlay.model import DEFAULT_DATA_PATH_PORT, OverlayNetwork, Peer
from shoal.network.overlay.names import NodeNames
from shoal.network.overlay.sandbox import NetworkSandbox
from shoal.network.overlay.sweep import sweep
from shoal.network.overlay.vip import VipTables


class Node:
    def __init__(self, args: argparse.Namespace) -> None:
        self.names = NodeNames(args.prefix)
        self.sandboxes = NetworkSandbox(self.names, args.port, args.local)
        self.endpoints = TaskEndpoints(self.names)
        self.gateway = GatewayBridge(self.names, args.gw_prefixlen)
        self.vips = VipTables(self.names.vip_table, args.vip_engine)
        self.networks: dict[str, OverlayNetwork] = {}

    async def do(self, cmd: dict[str, Any]) -> dict[str, Any]:
        op = cmd["op"]
        if op == "ensure":
            net = OverlayNetwork(**cmd["network"])
            self.networks[net.id] = net
            r = await self.sandboxes.ensure(net)
            return {"path": r.path, "created": r.created, "commands": r.commands}
        if op == "set_peers":
            peers = [Peer(**p) for p in cmd["peers"]]
            return {"commands": await self.sandboxes.set_peers(cmd["network"], peers)}
        if op == "remove":
            await self.sandboxes.remove(cmd["network"])
            self.networks.pop(cmd["network"], None)
            return {}
        if op == "task_ns":
            return {"path": await self.endpoints.create_task_namespace(cmd["name"])}
        if op == "remove_task_ns":
            path = self.names.path(self.names.task(cmd["name"]))
            await self.vips.forget(path)  # its context would keep the namespace alive
            await self.endpoints.remove_task_namespace(cmd["name"])
            return {}
        if op == "attach":
            net = self.networks[cmd["network"]]
            n = await self.endpoints.attach(cmd["netns"], net, cmd["ifname"], cmd["address"])
            return {"commands": n}
        if op == "detach":
            return {"removed": await self.endpoints.detach(cmd["netns"], cmd["ifname"])}
        if op == "gateway":
            return {"address": await self.gateway.ensure()}
        if op == "attach_gateway":
            address = await self.gateway.attach_gateway(
                cmd["netns"], cmd["ifname"], cmd.get("address")
            )
            return {"address": address}
        if op == "detach_gateway":
            return {"removed": await self.gateway.detach_gateway(cmd["netns"], cmd["ifname"])}
        if op == "remove_gateway":
            await self.gateway.remove()
            return {}
        if op == "vips":
            await self.vips.apply(cmd["netns"], cmd["vips"])
            return {"engine": self.vips.engine}
        if op == "forget_vips":
            await self.vips.forget(cmd["netns"])
            return {}
        if op == "present":
            return {"networks": self.sandboxes.present()}
        if op == "sweep":
            return {"gone": await sweep(self.names)}
        raise ValueError(f"unknown op {op!r}")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m shoal.network.overlay.tool")
    p.add_argument("--prefix", default="shoal")
    p.add_argument("--port", type=int, default=DEFAULT_DATA_PATH_PORT)
    p.add_argument("--local", default=None, help="the node's underlay address")
    p.add_argument("--gw-prefixlen", type=int, default=16)
    p.add_argument("--vip-engine", choices=["auto", "library", "nft"], default="auto")
    return p.parse_args(argv)


async def _serve(args: argparse.Namespace) -> int:
    node = Node(args)
    # A thread reads standard input, which may be a pipe or a file (the loop's pipe
    # transport takes pipes only).
    while line := await asyncio.to_thread(sys.stdin.readline):
        if not line.strip():
            continue
        try:
            reply = {"ok": True, **await node.do(json.loads(line))}
        except Exception as e:
            reply = {"error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    await node.vips.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(_serve(_parse(argv)))


if __name__ == "__main__":
    sys.exit(main())
