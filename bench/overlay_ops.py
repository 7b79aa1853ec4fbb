"""What the overlay data plane's operations cost, in wall time per call (each is a few
tool processes): ensure (new, adopted), attach (new, adopted), set_peers of 100 peers
(from nothing with the kernel read first, from what the node remembers, one peer changed,
nothing changed), and one VIP table replace (10 VIPs x 5 backends, 100 x 10). Also what
entering a namespace costs each way (``ip -n`` vs ``nsenter --net``).

Runs in a network namespace of its own (made, entered with nsenter, deleted at the end),
so nothing touches the host's. Needs root. Prints a table and writes
bench/results/overlay_ops.json.
Run: .venv/bin/python bench/overlay_ops.py [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from shoal.network.overlay import (
    NetworkSandbox,
    NodeNames,
    OverlayNetwork,
    Peer,
    TaskEndpoints,
    VipTables,
    apply_vips,
    sweep,
    tools,
)

RESULTS = Path(__file__).parent / "results" / "overlay_ops.json"
PREFIX = "obench"


def peers(n: int, node: str = "198.18.0.2") -> list[Peer]:
    return [Peer(f"10.20.{i // 250}.{i % 250 + 2}", node) for i in range(n)]


async def timed(fn: Callable[[], Awaitable[object]], rounds: int) -> dict[str, float]:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        await fn()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {
        "median_ms": round(statistics.median(times), 2),
        "p90_ms": round(times[min(len(times) - 1, int(0.9 * len(times)))], 2),
        "rounds": rounds,
    }


async def measure(rounds: int) -> dict[str, dict[str, float]]:
    try:
        return await _measure(rounds)
    finally:
        await sweep(NodeNames(PREFIX))


async def _measure(rounds: int) -> dict[str, dict[str, float]]:
    names = NodeNames(PREFIX)
    sandboxes = NetworkSandbox(names, 4789, None)
    endpoints = TaskEndpoints(names)
    net = OverlayNetwork("bench0000000000000000000", "bench", "10.20.0.0/16", "10.20.0.1", 4500)
    out: dict[str, dict[str, float]] = {}

    async def new_sandbox() -> None:
        await sandboxes.ensure(net)
        await sandboxes.remove(net.id)

    out["ensure, new sandbox (+ remove)"] = await timed(new_sandbox, rounds)
    await sandboxes.ensure(net)
    out["ensure, adopted (nothing to do)"] = await timed(lambda: sandboxes.ensure(net), rounds)

    task = await endpoints.create_task_namespace("t1")

    async def new_attach() -> None:
        await endpoints.attach(task, net, "eth0", "10.20.200.2")
        await endpoints.detach(task, "eth0")

    out["attach, new (+ detach)"] = await timed(new_attach, rounds)
    await endpoints.attach(task, net, "eth0", "10.20.200.2")
    out["attach, adopted"] = await timed(
        lambda: endpoints.attach(task, net, "eth0", "10.20.200.2"), rounds
    )

    hundred, other = peers(100), peers(100, "198.18.0.3")

    async def cold() -> None:
        await sandboxes.set_peers(net.id, [])
        sandboxes._peers.clear()  # as after a restart: read the kernel first
        await sandboxes.set_peers(net.id, hundred)

    async def cold_base() -> None:
        await sandboxes.set_peers(net.id, [])
        sandboxes._peers.clear()

    base = await timed(cold_base, rounds)
    c = await timed(cold, rounds)
    out["set_peers 100, from none, kernel read first"] = {
        k: round(v - base[k], 2) if k != "rounds" else v for k, v in c.items()
    }
    flip = [hundred, other]
    state = {"i": 0}

    async def all_change() -> None:
        state["i"] ^= 1
        await sandboxes.set_peers(net.id, flip[state["i"]])

    out["set_peers 100, every peer moved node (warm)"] = await timed(all_change, rounds)
    one = [hundred, [*hundred[:-1], Peer(hundred[-1].address, "198.18.0.9")]]

    async def one_change() -> None:
        state["i"] ^= 1
        await sandboxes.set_peers(net.id, one[state["i"]])

    out["set_peers 100, one peer changed (warm)"] = await timed(one_change, rounds)
    out["set_peers 100, unchanged"] = await timed(
        lambda: sandboxes.set_peers(net.id, one[state["i"]]), rounds
    )

    small = {f"10.20.100.{v}": [f"10.20.1.{v * 5 + b}" for b in range(5)] for v in range(10)}
    big = {
        f"10.20.{100 + v // 200}.{v % 200 + 2}": [f"10.20.{v % 50}.{b + 2}" for b in range(10)]
        for v in range(100)
    }
    out["VIP table replace, 10 VIPs x 5, nft -f"] = await timed(
        lambda: apply_vips(task, names.vip_table, small), rounds
    )
    out["VIP table replace, 100 VIPs x 10, nft -f"] = await timed(
        lambda: apply_vips(task, names.vip_table, big), rounds
    )
    lib = VipTables(names.vip_table, "library")
    await lib.apply(task, small)  # opens the context
    out["VIP table replace, 10 VIPs x 5, libnftables"] = await timed(
        lambda: lib.apply(task, small), rounds
    )
    out["VIP table replace, 100 VIPs x 10, libnftables"] = await timed(
        lambda: lib.apply(task, big), rounds
    )
    tasks = [await endpoints.create_task_namespace(f"p{i}") for i in range(10)]
    for engine in ("nft", "library"):
        tables = VipTables(names.vip_table, engine)  # type: ignore[arg-type]
        await asyncio.gather(*(tables.apply(t, small) for t in tasks))
        out[f"10 task namespaces at once, {engine}"] = await timed(
            lambda tables=tables: asyncio.gather(*(tables.apply(t, small) for t in tasks)),
            max(3, rounds // 3),
        )
        await tables.close()
    await lib.close()
    sandbox = sandboxes.path(net.id)
    out["ip -n NAME link show"] = await timed(
        lambda: tools.run(["ip", "-n", os.path.basename(sandbox), "link", "show"]), rounds
    )
    out["nsenter --net=PATH ip link show"] = await timed(
        lambda: tools.run(["nsenter", f"--net={sandbox}", "ip", "link", "show"]), rounds
    )
    out["ip link show (no namespace change)"] = await timed(
        lambda: tools.run(["ip", "link", "show"]), rounds
    )
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--inside", help=argparse.SUPPRESS)
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (network namespaces)")
    if args.inside is None:
        ns = f"xbench-host-{os.getpid()}"  # not under PREFIX: sweep would take it
        subprocess.run(["ip", "netns", "add", ns], check=True)
        try:
            subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
            argv = [sys.executable, __file__, "--rounds", str(args.rounds), "--inside", ns]
            sys.exit(subprocess.run(["nsenter", f"--net=/run/netns/{ns}", *argv]).returncode)
        finally:
            subprocess.run(["ip", "netns", "del", ns], check=True)
    results = asyncio.run(measure(args.rounds))
    width = max(map(len, results))
    print(f"{'operation':{width}}  median ms   p90 ms")
    for name, r in results.items():
        print(f"{name:{width}}  {r['median_ms']:9.2f}  {r['p90_ms']:7.2f}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {"machine": platform.platform(), "cpus": os.cpu_count(), "results": results},
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
