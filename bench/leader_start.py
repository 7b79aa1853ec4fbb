"""How long a newly elected leader's orchestration loops hold its event loop on a large store
(issue 15): each loop's first read of the store (``init``, or the restart supervisor's
``_recover``) is timed, then its first ``tick`` with a probe task measuring the longest stretch
the loop ran nothing else. Nothing needs doing in the store (every task running on a ready
node), so the figures are the cost of looking, as after a leader change in a settled cluster.

Prints a table and writes bench/results/leader_start[-LABEL].json.
Run: .venv/bin/python bench/leader_start.py [--tasks 25000 --services 25 --nodes 1000]
"""

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from pathlib import Path

import shoal
from shoal.api.objects import Node, NodeDescription, NodeResources, NodeStatus
from shoal.api.specs import NodeSpec
from shoal.api.types import NodeState
from shoal.manager.orchestrator.components import orchestration_components
from shoal.manager.orchestrator.reconcile_loop import ReconcileLoop
from shoal.manager.orchestrator.restart import RestartSupervisor
from shoal.store import Tx

sys.path.insert(0, str(Path(__file__).parent))
from service_status import build, longest_stall

RESULTS = Path(__file__).parent / "results"


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=25_000)
    ap.add_argument("--services", type=int, default=25)
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--label", default="")
    args = ap.parse_args()

    t0 = time.perf_counter()
    control = await build(args.tasks, args.services)
    store = control.store

    def add_nodes(tx: Tx, first: int) -> None:
        for i in range(first, min(first + 200, args.nodes)):
            tx.create(
                Node(
                    ID=f"node{i:05d}",
                    Spec=NodeSpec(),
                    Description=NodeDescription(
                        Hostname=f"host{i}",
                        Resources=NodeResources(NanoCPUs=64 * 10**9, MemoryBytes=1 << 40),
                    ),
                    Status=NodeStatus(State=NodeState.READY, Addr="127.0.0.1"),
                )
            )

    for first in range(0, args.nodes, 200):
        await store.update(lambda tx, first=first: add_nodes(tx, first))  # type: ignore[misc]
    print(f"store: {args.tasks} tasks in {time.perf_counter() - t0:.1f} s")

    rows = []
    for component in orchestration_components(store, store.clock):
        name = type(component).__name__
        started = time.perf_counter()
        if isinstance(component, RestartSupervisor):
            component._recover(store.view())
            init = time.perf_counter() - started
            tick_wall = tick_stall = 0.0
        elif isinstance(component, ReconcileLoop):
            component.init(store.view())
            init = time.perf_counter() - started
            tick_wall, tick_stall, _ = await longest_stall(component.tick())
        else:
            continue
        rows.append(
            {
                "component": name,
                "init_ms": round(init * 1000, 1),
                "first_tick_wall_ms": round(tick_wall * 1000, 1),
                "first_tick_longest_stall_ms": round(tick_stall * 1000, 1),
            }
        )
        if isinstance(component, RestartSupervisor):
            component.cancel_all()
    print(f"{'component':<24} {'init ms':>9} {'tick wall ms':>13} {'tick stall ms':>14}")
    for r in rows:
        print(
            f"{r['component']:<24} {r['init_ms']:>9} {r['first_tick_wall_ms']:>13} "
            f"{r['first_tick_longest_stall_ms']:>14}"
        )
    out = RESULTS / f"leader_start{'-' + args.label if args.label else ''}.json"
    out.write_text(
        json.dumps(
            {
                "bench": "leader_start",
                "shoal_src": str(Path(shoal.__file__).parent),
                "tasks": args.tasks,
                "services": args.services,
                "nodes": args.nodes,
                "components": rows,
                "loadavg_1m": os.getloadavg()[0],
                "python": platform.python_version(),
                "machine": platform.machine(),
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
